// SPDX-License-Identifier: GPL-2.0
/*
 * fabric_inject.c - play a broken or hostile partition.
 *
 *   fabric_inject bad ME DST
 *	write malformed messages into this partition's own outgoing ring to
 *	partition DST, the way a buggy kernel on this side of the fabric
 *	could, then make the ring's head jump.  The receiving driver must
 *	count and drop every one of them and keep working.  Prints the
 *	number of bad messages sent.  Run it only while ME's own driver
 *	sends nothing to DST (the test sequences that), since the driver is
 *	the ring's only legitimate producer.  Then one well-formed PING for
 *	another incarnation of DST (as if sent before DST restarted): DST
 *	must drop it unanswered and count it as stale, not as bad.
 *
 *   fabric_inject forge ME VICTIM DST
 *	try to speak for partition VICTIM: write, through a writable mapping
 *	of VICTIM's mailbox, a message from VICTIM to DST, bump VICTIM's
 *	ring head, mark VICTIM as leaving, and fence DST in VICTIM's name.
 *	None of it may land (the fabric gives a partition read-only access
 *	to every region but its own).  Prints how many of the writes landed.
 *
 * The layout is written out here from docs/partitions.md and
 * drivers/xpmem/xpmem_wire.h on purpose, not included: the test checks the
 * documented wire format.
 */
#include <assert.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PARTS 4
#define ENTRIES 128
#define VERSION 4

struct slot {
	uint64_t magic, nonce, heartbeat;
	uint32_t version, state;
	uint64_t fenced[PARTS], seen[PARTS], reserved[4];
};
struct msg {
	uint16_t version, type, src, dst;
	uint32_t len, to_incarnation;	/* the receiver's nonce, low 32 bits */
	uint64_t seq, payload[5];
};
struct ring { volatile uint64_t head, pad[7]; struct msg m[ENTRIES]; };
struct consumed { volatile uint64_t tail, pad[7]; };
/* partition p's mailbox: written by p only */
struct mailbox {
	struct slot slot;
	struct consumed in[PARTS];	/* in[q]: how far p consumed q's ring to p */
	struct ring out[PARTS];		/* out[q]: p's messages to q */
};

static_assert(sizeof(struct slot) == 128, "slot");
static_assert(sizeof(struct msg) == 64, "msg");
static_assert(sizeof(struct ring) == 64 + 64 * ENTRIES, "ring");

/* partition p's mailbox as partition me sees it (fabric.h), mapped writable */
static struct mailbox *map_mailbox(int me, int p)
{
	char path[64];
	void *mb;
	int fd;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/0000:00:%02x.0/resource2",
		 p == me ? 0x0f : 0x18 + p);
	fd = open(path, O_RDWR | O_SYNC);
	if (fd < 0) {
		perror(path);
		exit(1);
	}
	mb = mmap(NULL, sizeof(struct mailbox), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mb == MAP_FAILED) {
		perror(path);
		exit(1);
	}
	close(fd);
	return mb;
}

static int inject_bad(int me, int dst)
{
	struct mailbox *own = map_mailbox(me, me), *peer = map_mailbox(me, dst);
	struct ring *r = &own->out[dst];
	volatile uint64_t *tail = &peer->in[me].tail;	/* dst's consumption of our ring */
	uint64_t head;
	int sent = 0;
	struct msg bad[] = {
		/* src/dst 0: the right id; 3: a wrong one (filled in below) */
		{ .version = 99, .type = 1, .len = 8 },		/* unknown wire version */
		{ .version = VERSION, .type = 1, .src = 3, .len = 8 },	/* not the ring's source */
		{ .version = VERSION, .type = 1, .dst = 3, .len = 8 },	/* not the receiver */
		{ .version = VERSION, .type = 77, .len = 8 },		/* unknown type */
		{ .version = VERSION, .type = 1, .len = 4096 },	/* payload beyond the message */
		{ .version = VERSION, .type = 2, .len = 40 },		/* a PONG of the wrong length */
		{ .version = VERSION, .type = 8, .len = 40 },		/* a REPLY to no request */
		{ .version = VERSION, .type = 10, .len = 8 },		/* an ACK of no invalidation */
		{ .version = VERSION, .type = 9, .len = 8 },		/* an INVAL of the wrong length */
	};

	uint32_t incarnation = (uint32_t)peer->slot.nonce;	/* dst's, low 32 bits */

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
		m.to_incarnation = incarnation;
		m.payload[0] = 0xbadbadbadULL;
		r->m[head % ENTRIES] = m;
		__sync_synchronize();
		r->head = ++head;
		sent++;
	}
	/* wait until the receiver consumed them, then make the index jump */
	for (int i = 0; i < 5000 && *tail != head; i++)
		usleep(1000);
	if (*tail != head) {
		fprintf(stderr, "receiver did not consume the ring (tail %llu head %llu)\n",
			(unsigned long long)*tail, (unsigned long long)head);
		return 1;
	}
	r->head = head + 10 * ENTRIES;
	sent++;
	for (int i = 0; i < 5000 && *tail != r->head; i++)
		usleep(1000);
	if (*tail != r->head) {
		fprintf(stderr, "receiver did not resynchronise the ring\n");
		return 1;
	}
	/* a PING (type 1, one payload word) for another incarnation of dst */
	head = r->head;
	r->m[head % ENTRIES] = (struct msg){ .version = VERSION, .type = 1, .src = me,
					     .dst = dst, .len = 8, .seq = 2000,
					     .to_incarnation = incarnation ^ 1 };
	__sync_synchronize();
	r->head = ++head;
	for (int i = 0; i < 5000 && *tail != head; i++)
		usleep(1000);
	if (*tail != head) {
		fprintf(stderr, "receiver did not consume the stale message\n");
		return 1;
	}
	printf("%d\n", sent);
	return 0;
}

static int forge(int me, int victim, int dst)
{
	struct mailbox *vm = map_mailbox(me, victim), *dm = map_mailbox(me, dst);
	struct ring *r = &vm->out[dst];
	uint64_t head = r->head, state = vm->slot.state, fenced = vm->slot.fenced[dst];
	uint64_t nonce = vm->slot.nonce;
	struct msg m = {
		.version = VERSION, .type = 1 /* PING */, .src = victim, .dst = dst, .len = 8,
		.seq = head + 1, .payload = { 0xf0f0f0f0 },
	};
	int landed = 0;

	/*
	 * The victim's own driver may send to dst meanwhile (head + 1 and
	 * that entry), so what would show a landed write is distinct: our
	 * message's payload, a head 1000 ahead.
	 */
	r->m[head % ENTRIES] = m;
	__sync_synchronize();
	r->head = head + 1000;
	vm->slot.state = 2;			/* LEAVING: "it shut down" */
	vm->slot.fenced[dst] = dm->slot.nonce;	/* "it declared dst dead" */
	vm->slot.nonce = nonce ^ 1;		/* "it restarted" */
	__sync_synchronize();
	usleep(10000);
	landed += r->m[head % ENTRIES].payload[0] == m.payload[0];
	landed += r->head >= head + 1000;
	landed += vm->slot.state != state;
	landed += vm->slot.fenced[dst] != fenced;
	landed += vm->slot.nonce != nonce;
	printf("%d\n", landed);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "bad"))
		return inject_bad(atoi(argv[2]), atoi(argv[3]));
	if (argc == 5 && !strcmp(argv[1], "forge"))
		return forge(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
	fprintf(stderr, "usage: fabric_inject bad ME DST | forge ME VICTIM DST\n");
	return 2;
}
