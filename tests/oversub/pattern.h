/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pattern.h - checksummed, versioned page contents for the oversubscription
 * suite.
 *
 * Every test page carries a header {seq, writer, page, gen} and a payload
 * that is a pure function of (writer, page, gen).  A writer bumps seq to
 * odd, writes, bumps it to even (a seqlock), so a reader that races with a
 * writer retries instead of reporting a torn page.  A reader that sees a
 * consistent page with a *lower* generation than one it saw before, or
 * than the writer's final record, has been shown a stale page: that is
 * exactly the failure the driver must never allow.
 */
#ifndef XPMEM_OVERSUB_PATTERN_H
#define XPMEM_OVERSUB_PATTERN_H

#include <stdint.h>
#include <string.h>

struct pg_hdr {
	uint64_t seq;		/* odd while being written */
	uint64_t writer;
	uint64_t page;
	uint64_t gen;
};

static inline uint64_t pat_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static inline uint64_t pat_word(uint64_t writer, uint64_t page, uint64_t gen,
				size_t i)
{
	return pat_mix((writer << 48) ^ (page << 24) ^ (gen << 8) ^ pat_mix(i));
}

/* Write generation gen of page `page` by `writer` into p (pgsize bytes). */
static inline void pat_write(void *p, size_t pgsize, uint64_t writer,
			     uint64_t page, uint64_t gen)
{
	struct pg_hdr *h = p;
	uint64_t *w = p;
	size_t n = pgsize / 8;

	__atomic_store_n(&h->seq, h->seq + 1, __ATOMIC_RELEASE);	/* odd */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	h->writer = writer;
	h->page = page;
	h->gen = gen;
	for (size_t i = sizeof(*h) / 8; i < n; i++)
		w[i] = pat_word(writer, page, gen, i);
	__atomic_store_n(&h->seq, h->seq + 1, __ATOMIC_RELEASE);	/* even */
}

enum pat_result { PAT_OK, PAT_BUSY, PAT_CORRUPT, PAT_EMPTY };

/*
 * Take a consistent copy of page p into buf and check it.  *gen gets the
 * generation.  PAT_BUSY: a writer was active, try again.  PAT_EMPTY: the
 * page was never written (all zero).
 */
static inline enum pat_result pat_read(const void *p, void *buf, size_t pgsize,
				       uint64_t *writer, uint64_t *page,
				       uint64_t *gen)
{
	const struct pg_hdr *h = p;
	struct pg_hdr *c = buf;
	uint64_t s1, s2, *w = buf;
	size_t n = pgsize / 8;

	s1 = __atomic_load_n(&h->seq, __ATOMIC_ACQUIRE);
	if (s1 & 1)
		return PAT_BUSY;
	memcpy(buf, p, pgsize);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	s2 = __atomic_load_n(&h->seq, __ATOMIC_ACQUIRE);
	if (s1 != s2 || (c->seq & 1) || c->seq != s1)
		return PAT_BUSY;
	if (c->seq == 0) {
		for (size_t i = 0; i < n; i++)
			if (w[i])
				return PAT_CORRUPT;
		return PAT_EMPTY;
	}
	for (size_t i = sizeof(*c) / 8; i < n; i++)
		if (w[i] != pat_word(c->writer, c->page, c->gen, i))
			return PAT_CORRUPT;
	*writer = c->writer;
	*page = c->page;
	*gen = c->gen;
	return PAT_OK;
}

#endif /* XPMEM_OVERSUB_PATTERN_H */
