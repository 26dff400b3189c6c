/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NAME
 *	fuzz_worker 1
 * SUMMARY
 *	libFuzzer target: the CDR handlers of mugaika-worker
 * SYNOPSIS
 *	fuzz_worker [libFuzzer options] [corpus-dir...]
 *	fuzz_worker corpus-dir|file...	(replay build: replay_main.c)
 * DESCRIPTION
 *	Input: 1 byte choosing the handler (below), then the item. The item
 *	is put in a memory file on fd 0, as the daemon puts it in a
 *	temporary file; the records the handler writes go to /dev/null
 *	(fd 1). Handlers run with small limits so that an input stays
 *	fast; the sandbox is not applied (libFuzzer needs the process).
 *
 *	  byte % 6: 0 rtf-text, 1 ooxml, 2 archive, 3 image, 4 tnef, 5 ole-text
 *
 *	Checks: the handler returns one of its statuses without crashing,
 *	leaking or reading out of bounds (the sanitizers do the work).
 *	pdf-disarm (qpdf) and pdf-flatten (poppler) are third-party parsers
 *	fuzzed upstream, driven here only through the corpus tests.
 *
 *	Seeds: testdata/fuzz/worker/.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "worker/handlers.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    static char o1[] = "max-members=50", o2[] = "max-total=4194304", o3[] = "max-pixels=4000000",
                o4[] = "max-output=1048576", o5[] = "max-depth=64", o6[] = "name=fuzz.bin",
                o7[] = "max-text=1048576";
    char *opts[] = {o1, o2, o3, o4, o5, o6, o7};
    static const mgw_handler_fn fns[] = {mgw_rtf_text, mgw_ooxml, mgw_archive,
                                         mgw_image,    mgw_tnef,  mgw_ole_text};
    enum mgw_status st;
    int fd;

    if (!init) {
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        FUZZ_CHECK(null >= 0 && dup2(null, 1) == 1);
        close(null);
        init = true;
    }
    if (size < 1)
        return 0;
    fd = memfd_create("fuzz-item", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(write(fd, data + 1, size - 1) == (ssize_t)(size - 1));
    FUZZ_CHECK(lseek(fd, 0, SEEK_SET) == 0);
    FUZZ_CHECK(dup2(fd, 0) == 0);
    close(fd);
    st = mgw_run_unconfined(fns[data[0] % G_N_ELEMENTS(fns)], (int)G_N_ELEMENTS(opts), opts);
    FUZZ_CHECK(st == MGW_OK || st == MGW_FAIL || st == MGW_ENCRYPTED || st == MGW_LIMIT);
    return 0;
}
