// SPDX-License-Identifier: GPL-2.0
/*
 * fabric_inject.c - play a broken or hostile partition: write malformed
 * messages into this partition's outgoing ring to partition DST in the
 * shared mailbox, the way a buggy kernel on the other side of the fabric
 * could, and a ring index that jumps.  The receiving driver must count and
 * drop every one of them and keep working.
 *
 * Usage: fabric_inject ME DST   (prints the number of bad messages sent)
 *
 * The layout is written out here from docs/partitions.md and
 * drivers/xpmem/xpmem_wire.h on purpose, not included: the test checks the
 * documented wire format.  Run it only while ME's own driver sends
 * nothing to DST (the test sequences that), since the driver is the ring's
 * only legitimate producer.
 */
#include <assert.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define PARTS 4
#define ENTRIES 128

struct slot {
	uint64_t magic, nonce, heartbeat;
	uint32_t version, state;
	uint64_t fenced[4], seen[4], reserved[4];
};
struct msg {
	uint16_t version, type, src, dst;
	uint32_t len, reserved;
	uint64_t seq, payload[5];
};
struct ring { volatile uint64_t head, p0[7], tail, p1[7]; struct msg m[ENTRIES]; };
struct mailbox { struct slot slot[PARTS]; struct ring ring[PARTS][PARTS]; };

static_assert(sizeof(struct slot) == 128, "slot");
static_assert(sizeof(struct msg) == 64, "msg");

int main(int argc, char **argv)
{
	struct mailbox *mb;
	struct ring *r;
	uint64_t head;
	int me, dst, fd, sent = 0;
	struct msg bad[] = {
		/* src/dst 0: the right id; 3: a wrong one (filled in below) */
		{ .version = 99, .type = 1, .len = 8 },		/* unknown wire version */
		{ .version = 2, .type = 1, .src = 3, .len = 8 },	/* not the ring's source */
		{ .version = 2, .type = 1, .dst = 3, .len = 8 },	/* not the receiver */
		{ .version = 2, .type = 77, .len = 8 },		/* unknown type */
		{ .version = 2, .type = 1, .len = 4096 },	/* payload beyond the message */
		{ .version = 2, .type = 2, .len = 40 },		/* a PONG of the wrong length */
		{ .version = 2, .type = 8, .len = 40 },		/* a REPLY to no request */
		{ .version = 2, .type = 10, .len = 8 },		/* an ACK of no invalidation */
		{ .version = 2, .type = 9, .len = 8 },		/* an INVAL of the wrong length */
	};

	if (argc != 3)
		return 2;
	me = atoi(argv[1]);
	dst = atoi(argv[2]);
	fd = open("/sys/bus/pci/devices/0000:00:0f.0/resource2", O_RDWR | O_SYNC);
	if (fd < 0) {
		perror("mailbox");
		return 1;
	}
	mb = mmap(NULL, sizeof(*mb), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mb == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	r = &mb->ring[me][dst];
	head = r->head;
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct msg m = bad[i];

		/* fill in the right ids except where the id is the error */
		if (m.src == 0)
			m.src = me;
		else
			m.src = (me + 1) % PARTS == dst ? (me + 2) % PARTS : (me + 1) % PARTS;
		if (m.dst == 0)
			m.dst = dst;
		else
			m.dst = (dst + 1) % PARTS == me ? (dst + 2) % PARTS : (dst + 1) % PARTS;
		m.seq = 1000 + i;
		m.payload[0] = 0xbadbadbadULL;
		r->m[head % ENTRIES] = m;
		__sync_synchronize();
		r->head = ++head;
		sent++;
	}
	/* wait until the receiver consumed them, then make the index jump */
	for (int i = 0; i < 5000 && r->tail != head; i++)
		usleep(1000);
	if (r->tail != head) {
		fprintf(stderr, "receiver did not consume the ring (tail %llu head %llu)\n",
			(unsigned long long)r->tail, (unsigned long long)head);
		return 1;
	}
	r->head = head + 10 * ENTRIES;
	sent++;
	for (int i = 0; i < 5000 && r->tail != r->head; i++)
		usleep(1000);
	if (r->tail != r->head) {
		fprintf(stderr, "receiver did not resynchronise the ring\n");
		return 1;
	}
	printf("%d\n", sent);
	return 0;
}
