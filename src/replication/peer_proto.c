/* Frames and the HELLO that open every connection between nodes. See peer_proto.h. */
#include <string.h>

#include "kmipd/error.h"
#include "kmipd/peer_proto.h"

void peer_put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

uint64_t peer_get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

void peer_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

uint32_t peer_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int peer_frame_begin(struct buf *out, enum peer_frame type, size_t body_len)
{
	uint8_t header[5];

	if (body_len + 1 > PEER_FRAME_MAX)
		return KMIPD_EINVAL;
	peer_put_u32(header, (uint32_t)(body_len + 1));
	header[4] = (uint8_t)type;
	return buf_append(out, header, sizeof(header));
}

int peer_hello_encode(struct buf *out, uint64_t node_id, const char *cluster_id,
		      const char *address)
{
	size_t id_len = strlen(cluster_id), addr_len = address != NULL ? strlen(address) : 0;
	uint8_t body[1 + 8 + 1 + PEER_CLUSTER_ID_MAX + 1 + PEER_ADDRESS_MAX];
	size_t n = 0;

	if (id_len == 0 || id_len > PEER_CLUSTER_ID_MAX || addr_len > PEER_ADDRESS_MAX)
		return KMIPD_EINVAL;
	body[n++] = PEER_PROTO_VERSION;
	peer_put_u64(body + n, node_id);
	n += 8;
	body[n++] = (uint8_t)id_len;
	memcpy(body + n, cluster_id, id_len);
	n += id_len;
	body[n++] = (uint8_t)addr_len;
	memcpy(body + n, address, addr_len);
	n += addr_len;
	if (peer_frame_begin(out, PEER_HELLO, n) != 0 || buf_append(out, body, n) != 0)
		return KMIPD_ENOMEM;
	return 0;
}

int peer_hello_decode(const uint8_t *body, size_t len, struct peer_hello *out)
{
	size_t n = 0, id_len, addr_len;

	memset(out, 0, sizeof(*out));
	if (len < 1 + 8 + 1)
		return KMIPD_EMALFORMED;
	out->version = body[n++];
	out->node_id = peer_get_u64(body + n);
	n += 8;
	id_len = body[n++];
	if (id_len == 0 || id_len > PEER_CLUSTER_ID_MAX || n + id_len + 1 > len)
		return KMIPD_EMALFORMED;
	memcpy(out->cluster_id, body + n, id_len);
	n += id_len;
	addr_len = body[n++];
	if (n + addr_len != len)
		return KMIPD_EMALFORMED;
	memcpy(out->address, body + n, addr_len);
	if (memchr(out->cluster_id, '\0', id_len) != NULL ||
	    memchr(out->address, '\0', addr_len) != NULL)
		return KMIPD_EMALFORMED;
	return 0;
}

int peer_frame_next(const uint8_t *data, size_t len, uint8_t *type, const uint8_t **body,
		    size_t *body_len, size_t *frame_len)
{
	uint32_t frame;

	if (len < 4)
		return KMIPD_EAGAIN;
	frame = peer_get_u32(data);
	if (frame == 0 || frame > PEER_FRAME_MAX)
		return KMIPD_EMALFORMED;
	if (len < 5 || len - 4 < frame)
		return KMIPD_EAGAIN;
	*type = data[4];
	*body = data + 5;
	*body_len = frame - 1;
	*frame_len = 4 + (size_t)frame;
	return 0;
}
