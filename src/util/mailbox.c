/* Cross-thread hand-off to a libuv loop; see mailbox.h. */
#include "kmipd/mailbox.h"
#include "kmipd/error.h"

static struct mailbox_item *take_all(struct mailbox *mailbox)
{
	struct mailbox_item *items;

	pthread_mutex_lock(&mailbox->lock);
	items = mailbox->head;
	mailbox->head = mailbox->tail = NULL;
	pthread_mutex_unlock(&mailbox->lock);
	return items;
}

static void drain(struct mailbox *mailbox)
{
	struct mailbox_item *item = take_all(mailbox);

	while (item != NULL) {
		struct mailbox_item *next = item->next;

		/* @fn may free the item: read next first. */
		mailbox->fn(mailbox, item);
		item = next;
	}
}

static void on_async(uv_async_t *async)
{
	drain(async->data);
}

int mailbox_init(struct mailbox *mailbox, uv_loop_t *loop, mailbox_fn fn, void *data)
{
	int rv;

	mailbox->head = mailbox->tail = NULL;
	mailbox->closed = false;
	mailbox->fn = fn;
	mailbox->data = data;
	rv = uv_async_init(loop, &mailbox->async, on_async);
	if (rv != 0)
		return rv;
	mailbox->async.data = mailbox;
	pthread_mutex_init(&mailbox->lock, NULL);
	return 0;
}

int mailbox_post(struct mailbox *mailbox, struct mailbox_item *item)
{
	item->next = NULL;
	pthread_mutex_lock(&mailbox->lock);
	if (mailbox->closed) {
		pthread_mutex_unlock(&mailbox->lock);
		return KMIPD_ECANCELED;
	}
	if (mailbox->tail != NULL)
		mailbox->tail->next = item;
	else
		mailbox->head = item;
	mailbox->tail = item;
	/* Sent under the lock so that close cannot release the handle in between. */
	uv_async_send(&mailbox->async);
	pthread_mutex_unlock(&mailbox->lock);
	return 0;
}

void mailbox_close(struct mailbox *mailbox, uv_close_cb close_cb)
{
	pthread_mutex_lock(&mailbox->lock);
	mailbox->closed = true;
	pthread_mutex_unlock(&mailbox->lock);
	drain(mailbox);
	uv_close((uv_handle_t *)&mailbox->async, close_cb);
}
