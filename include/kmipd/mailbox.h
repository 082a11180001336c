/* A mailbox hands work from any thread to one libuv loop: items are linked into a list
 * under a mutex and the loop is woken with uv_async_send, which coalesces wake-ups; the
 * loop then takes the whole list at once and handles the items in the order they were
 * posted. Workers post proposals to the raft loop this way, and the raft loop posts
 * completions back. */
#ifndef KMIPD_MAILBOX_H
#define KMIPD_MAILBOX_H

#include <pthread.h>
#include <stdbool.h>

#include <uv.h>

struct mailbox_item {
	struct mailbox_item *next;
};

struct mailbox;
typedef void (*mailbox_fn)(struct mailbox *mailbox, struct mailbox_item *item);

struct mailbox {
	uv_async_t async;
	pthread_mutex_t lock;
	struct mailbox_item *head;
	struct mailbox_item *tail;
	bool closed; /* posts after close are refused */
	mailbox_fn fn;
	void *data; /* for the owner */
};

/* Prepares @mailbox on @loop (call on the loop's thread); @fn handles each item there. */
int mailbox_init(struct mailbox *mailbox, uv_loop_t *loop, mailbox_fn fn, void *data);

/* Posts @item from any thread. The item's memory must stay valid until @fn has run for it.
 * Returns 0, or KMIPD_ECANCELED if the mailbox is closed (the item was not taken). */
int mailbox_post(struct mailbox *mailbox, struct mailbox_item *item);

/* Refuses further posts, handles what was already posted, and closes the async handle;
 * @close_cb runs when its memory may be released. Call on the loop's thread. */
void mailbox_close(struct mailbox *mailbox, uv_close_cb close_cb);

#endif
