"""The message layer against an independent KMIP implementation: PyKMIP encodes the
requests and decodes kmipd's responses, so neither side can agree with itself by accident."""
from kmip.core import enums, utils
from kmip.core.messages import contents, messages, payloads


def request(operation, payload, version=(1, 4), batch_id=None):
    header = messages.RequestHeader(
        protocol_version=contents.ProtocolVersion(*version),
        batch_count=contents.BatchCount(1),
    )
    item = messages.RequestBatchItem(
        operation=contents.Operation(operation),
        unique_batch_item_id=contents.UniqueBatchItemID(batch_id) if batch_id else None,
        request_payload=payload,
    )
    message = messages.RequestMessage(request_header=header, batch_items=[item])
    stream = utils.BytearrayStream()
    message.write(stream, kmip_version=enums.KMIPVersion.KMIP_1_4)
    return stream.buffer


def response(data):
    message = messages.ResponseMessage()
    message.read(utils.BytearrayStream(data), kmip_version=enums.KMIPVersion.KMIP_1_4)
    return message


def test_discover_versions_lists_1_4_down_to_1_0(kmip_process):
    out = response(kmip_process(request(enums.Operation.DISCOVER_VERSIONS,
                                        payloads.DiscoverVersionsRequestPayload())))
    item = out.batch_items[0]
    assert item.result_status.value == enums.ResultStatus.SUCCESS
    versions = [(v.major, v.minor) for v in item.response_payload.protocol_versions]
    assert versions == [(1, 4), (1, 3), (1, 2), (1, 1), (1, 0)]
    assert (out.response_header.protocol_version.major,
            out.response_header.protocol_version.minor) == (1, 4)


def test_discover_versions_answers_the_common_versions_in_client_order(kmip_process):
    wanted = [contents.ProtocolVersion(2, 0), contents.ProtocolVersion(1, 2),
              contents.ProtocolVersion(1, 1)]
    out = response(kmip_process(request(enums.Operation.DISCOVER_VERSIONS,
                                        payloads.DiscoverVersionsRequestPayload(wanted))))
    versions = [(v.major, v.minor) for v in out.batch_items[0].response_payload.protocol_versions]
    assert versions == [(1, 2), (1, 1)]


def test_query_names_operations_and_vendor(kmip_process):
    functions = [enums.QueryFunction.QUERY_OPERATIONS,
                 enums.QueryFunction.QUERY_SERVER_INFORMATION]
    out = response(kmip_process(request(enums.Operation.QUERY,
                                        payloads.QueryRequestPayload(functions),
                                        batch_id=b"\x01\x02")))
    item = out.batch_items[0]
    assert item.result_status.value == enums.ResultStatus.SUCCESS
    assert item.unique_batch_item_id.value == b"\x01\x02"
    assert enums.Operation.QUERY in item.response_payload.operations
    assert enums.Operation.DISCOVER_VERSIONS in item.response_payload.operations
    assert item.response_payload.vendor_identification == "kmipd test"


def test_unsupported_operation_fails_with_a_reason(kmip_process):
    payload = payloads.CheckRequestPayload(unique_identifier="1")
    out = response(kmip_process(request(enums.Operation.CHECK, payload)))
    item = out.batch_items[0]
    assert item.result_status.value == enums.ResultStatus.OPERATION_FAILED
    assert item.result_reason.value == enums.ResultReason.OPERATION_NOT_SUPPORTED
    assert "Check" in item.result_message.value


def test_kmipctl_decodes_a_pykmip_request(kmipctl):
    data = request(enums.Operation.QUERY,
                   payloads.QueryRequestPayload([enums.QueryFunction.QUERY_OBJECTS]))
    done = kmipctl("ttlv", "decode", "-", input=bytes(data).hex().encode())
    assert done.returncode == 0, done.stderr.decode()
    text = done.stdout.decode()
    for expected in ("Request Message", "Protocol Version Major", "Operation", "Query",
                     "Query Function", "Query Objects"):
        assert expected in text, text


def test_kmipctl_names_the_broken_rule_and_offset(kmipctl):
    # A Request Message claiming 32 bytes of value with only 8 present.
    done = kmipctl("ttlv", "decode", "42007801000000204200690100000018")
    assert done.returncode == 1
    err = done.stderr.decode()
    assert "offset 4" in err and "past the end" in err, err


def test_kmipctl_usage_errors_exit_2(kmipctl):
    assert kmipctl("ttlv", "decode").returncode == 2
    assert kmipctl("frobnicate").returncode == 2
