/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	fuzz 3h
 * SUMMARY
 *	shared declarations of the fuzz targets
 * DESCRIPTION
 *	Every target defines LLVMFuzzerTestOneInput. It is linked either
 *	with libFuzzer (clang, -fsanitize=fuzzer) or with replay_main.c,
 *	which runs a seed corpus through it as a regression test.
 *
 *	FUZZ_CHECK(cond) aborts with file:line when an invariant of the
 *	code under test does not hold: libFuzzer (or the replay) then
 *	reports the input as a crash.
 */
#ifndef MUGAIKA_FUZZ_H
#define MUGAIKA_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
