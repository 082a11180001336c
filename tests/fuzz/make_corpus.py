#!/usr/bin/python3
"""Writes the seed corpus of the fuzz targets: small, valid KMIP 1.x request messages
encoded by PyKMIP (Debian's python3-pykmip), an implementation independent of kmipd.

Everything is fixed (time stamps, identifiers, names), so the output is the same on every
run. Usage: tests/fuzz/make_corpus.py [DIR]   (default: tests/fuzz/corpus next to this)

Hand-made regression seeds (crash-*.ttlv) in the same directory are left alone."""
import os
import sys

from kmip.core import attributes, enums, objects, primitives, utils
from kmip.core.factories.attributes import AttributeFactory
from kmip.core.messages import contents, messages, payloads

# 2023-11-14T22:13:20Z, for every Time Stamp and date in the corpus.
FIXED_TIME = 1700000000
UID = "2c9e1f40-5b7d-4e0a-9f3c-6d1a2b3c4d5e"

attr = AttributeFactory().create_attribute


def message(items, version=(1, 4), **header_fields):
    """A Request Message of @items, each (operation, payload, batch id or None)."""
    header = messages.RequestHeader(
        protocol_version=contents.ProtocolVersion(*version),
        batch_count=contents.BatchCount(len(items)),
        **header_fields,
    )
    batch = [
        messages.RequestBatchItem(
            operation=contents.Operation(operation),
            unique_batch_item_id=contents.UniqueBatchItemID(batch_id) if batch_id else None,
            request_payload=payload,
        )
        for operation, payload, batch_id in items
    ]
    stream = utils.BytearrayStream()
    kmip_version = enums.KMIPVersion.KMIP_1_0 if version == (1, 0) else enums.KMIPVersion.KMIP_1_4
    messages.RequestMessage(request_header=header, batch_items=batch).write(
        stream, kmip_version=kmip_version)
    return bytes(stream.buffer)


def request(operation, payload, version=(1, 4), batch_id=None, **header_fields):
    return message([(operation, payload, batch_id)], version, **header_fields)


class RawPayload(primitives.Struct):
    """A Request Payload of the given fields, for operations PyKMIP 0.10 has no 1.x
    payload class for (Add Attribute)."""

    def __init__(self, fields):
        super().__init__(enums.Tags.REQUEST_PAYLOAD)
        self.fields = fields

    def write(self, ostream, kmip_version=enums.KMIPVersion.KMIP_1_0):
        tstream = utils.BytearrayStream()
        for field in self.fields:
            field.write(tstream, kmip_version=kmip_version)
        self.length = tstream.length()
        super().write(ostream, kmip_version=kmip_version)
        ostream.write(tstream.buffer)


def uid():
    return attributes.UniqueIdentifier(UID)


def query(*functions):
    return payloads.QueryRequestPayload(list(functions))


def seeds():
    Q = enums.QueryFunction
    Op = enums.Operation
    A = enums.AttributeType

    yield "discover-versions-empty", request(
        Op.DISCOVER_VERSIONS, payloads.DiscoverVersionsRequestPayload())
    yield "discover-versions-list", request(
        Op.DISCOVER_VERSIONS,
        payloads.DiscoverVersionsRequestPayload([
            contents.ProtocolVersion(2, 0),
            contents.ProtocolVersion(1, 4),
            contents.ProtocolVersion(1, 2),
            contents.ProtocolVersion(1, 0),
        ]),
        version=(1, 1))

    yield "query-operations-objects", request(
        Op.QUERY, query(Q.QUERY_OPERATIONS, Q.QUERY_OBJECTS))
    yield "query-server-information", request(
        Op.QUERY, query(Q.QUERY_SERVER_INFORMATION), batch_id=b"\x01\x02")
    yield "query-all-functions", request(
        Op.QUERY,
        query(Q.QUERY_OPERATIONS, Q.QUERY_OBJECTS, Q.QUERY_SERVER_INFORMATION,
              Q.QUERY_APPLICATION_NAMESPACES, Q.QUERY_EXTENSION_LIST, Q.QUERY_EXTENSION_MAP,
              Q.QUERY_ATTESTATION_TYPES, Q.QUERY_RNGS, Q.QUERY_VALIDATIONS, Q.QUERY_PROFILES,
              Q.QUERY_CAPABILITIES, Q.QUERY_CLIENT_REGISTRATION_METHODS))
    yield "query-kmip-1.0", request(
        Op.QUERY, query(Q.QUERY_OPERATIONS), version=(1, 0))
    # Every optional header field, including a Username and Password credential.
    yield "query-full-header", request(
        Op.QUERY, query(Q.QUERY_OBJECTS),
        batch_id=b"hdr",
        maximum_response_size=contents.MaximumResponseSize(4096),
        asynchronous_indicator=contents.AsynchronousIndicator(False),
        authentication=contents.Authentication([
            objects.Credential(
                credential_type=enums.CredentialType.USERNAME_AND_PASSWORD,
                credential_value=objects.UsernamePasswordCredential(
                    username="fuzz", password="secret")),
        ]),
        batch_error_cont_option=contents.BatchErrorContinuationOption(
            enums.BatchErrorContinuationOption.CONTINUE),
        batch_order_option=contents.BatchOrderOption(True),
        time_stamp=contents.TimeStamp(FIXED_TIME))

    yield "create-aes256", request(
        Op.CREATE,
        payloads.CreateRequestPayload(
            object_type=enums.ObjectType.SYMMETRIC_KEY,
            template_attribute=objects.TemplateAttribute(attributes=[
                attr(A.CRYPTOGRAPHIC_ALGORITHM, enums.CryptographicAlgorithm.AES),
                attr(A.CRYPTOGRAPHIC_LENGTH, 256),
                attr(A.CRYPTOGRAPHIC_USAGE_MASK, [
                    enums.CryptographicUsageMask.ENCRYPT,
                    enums.CryptographicUsageMask.DECRYPT,
                ]),
                attr(A.NAME, "fuzz-key-1"),
            ])),
        batch_id=b"create")
    yield "get", request(Op.GET, payloads.GetRequestPayload(
        unique_identifier=UID, key_format_type=enums.KeyFormatType.RAW))
    yield "activate", request(Op.ACTIVATE, payloads.ActivateRequestPayload(uid()))
    yield "revoke", request(Op.REVOKE, payloads.RevokeRequestPayload(
        unique_identifier=uid(),
        revocation_reason=objects.RevocationReason(
            code=enums.RevocationReasonCode.KEY_COMPROMISE, message="fuzz seed"),
        compromise_occurrence_date=primitives.DateTime(
            FIXED_TIME - 86400, enums.Tags.COMPROMISE_OCCURRENCE_DATE)))
    yield "destroy", request(Op.DESTROY, payloads.DestroyRequestPayload(uid()))
    yield "locate-attributes", request(Op.LOCATE, payloads.LocateRequestPayload(
        maximum_items=10,
        attributes=[
            attr(A.OBJECT_TYPE, enums.ObjectType.SYMMETRIC_KEY),
            attr(A.CRYPTOGRAPHIC_ALGORITHM, enums.CryptographicAlgorithm.AES),
            attr(A.NAME, "fuzz-key-1"),
        ]))
    yield "get-attributes", request(Op.GET_ATTRIBUTES, payloads.GetAttributesRequestPayload(
        unique_identifier=UID,
        attribute_names=["Name", "State", "Cryptographic Usage Mask", "x-fuzz"]))
    yield "add-attribute-custom", request(Op.ADD_ATTRIBUTE, RawPayload([
        uid(),
        attr("x-fuzz-purpose", "seed corpus"),
    ]))
    yield "batch-discover-query", message([
        (Op.DISCOVER_VERSIONS, payloads.DiscoverVersionsRequestPayload(), b"\x00"),
        (Op.QUERY, query(Q.QUERY_OPERATIONS, Q.QUERY_SERVER_INFORMATION), b"\x01"),
    ], batch_error_cont_option=contents.BatchErrorContinuationOption(
        enums.BatchErrorContinuationOption.CONTINUE))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(out, name + ".ttlv"), "wb") as f:
            f.write(data)
        print(f"{name}.ttlv: {len(data)} bytes")


if __name__ == "__main__":
    main()
