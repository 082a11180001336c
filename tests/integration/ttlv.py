"""A small, independent TTLV encoder/decoder for tests that need exact bytes on the wire
(vCenter's batch IDs, custom attributes of any type, malformed messages)."""
import struct

STRUCTURE, INTEGER, LONG, BIG, ENUM, BOOL, TEXT, BYTES, DATE, INTERVAL = range(1, 11)

# Tags used by the tests.
T = dict(
    ACTIVATION_DATE=0x420001, ATTRIBUTE=0x420008, ATTRIBUTE_INDEX=0x420009,
    ATTRIBUTE_NAME=0x42000A, ATTRIBUTE_VALUE=0x42000B, BATCH_COUNT=0x42000D,
    BATCH_ITEM=0x42000F, CRYPTOGRAPHIC_ALGORITHM=0x420028, CRYPTOGRAPHIC_LENGTH=0x42002A,
    CRYPTOGRAPHIC_USAGE_MASK=0x42002C, KEY_BLOCK=0x420040, KEY_FORMAT_TYPE=0x420042,
    KEY_MATERIAL=0x420043, KEY_VALUE=0x420045, MAXIMUM_ITEMS=0x42004F, NAME=0x420053,
    NAME_TYPE=0x420054, NAME_VALUE=0x420055, OBJECT_TYPE=0x420057, OPERATION=0x42005C,
    PROTOCOL_VERSION=0x420069, PROTOCOL_VERSION_MAJOR=0x42006A,
    PROTOCOL_VERSION_MINOR=0x42006B, REQUEST_HEADER=0x420077, REQUEST_MESSAGE=0x420078,
    REQUEST_PAYLOAD=0x420079, RESPONSE_HEADER=0x42007A, RESPONSE_MESSAGE=0x42007B,
    RESPONSE_PAYLOAD=0x42007C, RESULT_MESSAGE=0x42007D, RESULT_REASON=0x42007E,
    RESULT_STATUS=0x42007F, STATE=0x42008D, SYMMETRIC_KEY=0x42008F,
    TEMPLATE_ATTRIBUTE=0x420091, UNIQUE_BATCH_ITEM_ID=0x420093, UNIQUE_IDENTIFIER=0x420094,
)

OP = dict(CREATE=0x01, LOCATE=0x08, GET=0x0A, GET_ATTRIBUTES=0x0B, GET_ATTRIBUTE_LIST=0x0C,
          ADD_ATTRIBUTE=0x0D, MODIFY_ATTRIBUTE=0x0E, DELETE_ATTRIBUTE=0x0F, ACTIVATE=0x12,
          REVOKE=0x13, DESTROY=0x14, QUERY=0x18, DISCOVER_VERSIONS=0x1E)


def item(tag, typ, value):
    return (tag, typ, value)


def encode(it):
    tag, typ, value = it
    if typ == STRUCTURE:
        body = b"".join(encode(c) for c in value)
    elif typ in (INTEGER, ENUM, INTERVAL):
        body = struct.pack(">I" if typ != INTEGER else ">i", value)
    elif typ in (LONG, DATE):
        body = struct.pack(">q", value)
    elif typ == BOOL:
        body = struct.pack(">Q", 1 if value else 0)
    elif typ == TEXT:
        body = value.encode()
    elif typ in (BYTES, BIG):
        body = bytes(value)
    else:
        raise ValueError(typ)
    pad = (8 - len(body) % 8) % 8
    return struct.pack(">I", tag)[1:] + bytes([typ]) + struct.pack(">I", len(body)) + body + \
        b"\0" * pad


def decode(data, offset=0):
    """Returns (item, next offset); items are (tag, type, value) with structures as lists."""
    tag = int.from_bytes(data[offset:offset + 3], "big")
    typ = data[offset + 3]
    length = int.from_bytes(data[offset + 4:offset + 8], "big")
    body = data[offset + 8:offset + 8 + length]
    end = offset + 8 + length + (8 - length % 8) % 8
    if typ == STRUCTURE:
        children, at = [], 0
        while at < length:
            child, at = decode(body, at)
            children.append(child)
        value = children
    elif typ == INTEGER:
        value = struct.unpack(">i", body)[0]
    elif typ in (ENUM, INTERVAL):
        value = struct.unpack(">I", body)[0]
    elif typ in (LONG, DATE):
        value = struct.unpack(">q", body)[0]
    elif typ == BOOL:
        value = bool(struct.unpack(">Q", body)[0])
    elif typ == TEXT:
        value = body.decode()
    else:
        value = bytes(body)
    return (tag, typ, value), end


def find(it, *path):
    """The first descendant along @path of tag names, or None."""
    for name in path:
        if it is None:
            return None
        it = next((c for c in it[2] if c[0] == T[name]), None)
    return it


def find_all(it, name):
    return [c for c in it[2] if c[0] == T[name]]


def request(items, version=(1, 1)):
    """A Request Message; @items are (operation, payload children, batch id or None)."""
    header = item(T["REQUEST_HEADER"], STRUCTURE, [
        item(T["PROTOCOL_VERSION"], STRUCTURE, [
            item(T["PROTOCOL_VERSION_MAJOR"], INTEGER, version[0]),
            item(T["PROTOCOL_VERSION_MINOR"], INTEGER, version[1])]),
        item(T["BATCH_COUNT"], INTEGER, len(items))])
    batch = []
    for operation, payload, batch_id in items:
        children = [item(T["OPERATION"], ENUM, operation)]
        if batch_id is not None:
            children.append(item(T["UNIQUE_BATCH_ITEM_ID"], BYTES, batch_id))
        children.append(item(T["REQUEST_PAYLOAD"], STRUCTURE, payload))
        batch.append(item(T["BATCH_ITEM"], STRUCTURE, children))
    return encode(item(T["REQUEST_MESSAGE"], STRUCTURE, [header] + batch))


def attribute(name, typ, value, index=None):
    children = [item(T["ATTRIBUTE_NAME"], TEXT, name)]
    if index is not None:
        children.append(item(T["ATTRIBUTE_INDEX"], INTEGER, index))
    children.append(item(T["ATTRIBUTE_VALUE"], typ, value))
    return item(T["ATTRIBUTE"], STRUCTURE, children)


def uid(value):
    return item(T["UNIQUE_IDENTIFIER"], TEXT, value)


def results(response_bytes):
    """The batch items of a response as dicts: status, reason, message, batch_id, payload."""
    msg, _ = decode(response_bytes)
    assert msg[0] == T["RESPONSE_MESSAGE"], hex(msg[0])
    out = []
    for b in find_all(msg, "BATCH_ITEM"):
        get = lambda name: (find(b, name) or (None, None, None))[2]
        out.append(dict(status=get("RESULT_STATUS"), reason=get("RESULT_REASON"),
                        message=get("RESULT_MESSAGE"), batch_id=get("UNIQUE_BATCH_ITEM_ID"),
                        operation=get("OPERATION"), payload=find(b, "RESPONSE_PAYLOAD")))
    return msg, out
