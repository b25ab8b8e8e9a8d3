"""A tiny C program the transport tests push to a "device" and run there, plus process helpers."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

PROBE_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

/* probe echo ARGS... | probe write FILE TEXT | probe exit N | probe hang | probe sdot */
int main(int argc, char **argv) {
    struct utsname u;
    uname(&u);
    if (argc < 2) return 2;
    if (!strcmp(argv[1], "echo")) {
        printf("machine=%s", u.machine);
        for (int i = 2; i < argc; i++) printf(" [%s]", argv[i]);
        printf("\n");
        fprintf(stderr, "probe stderr\n");
        return 0;
    }
    if (!strcmp(argv[1], "write") && argc == 4) {
        FILE *f = fopen(argv[2], "w");
        if (!f) return 3;
        fprintf(f, "%s from %s\n", argv[3], u.machine);
        return fclose(f) ? 3 : 0;
    }
    if (!strcmp(argv[1], "exit") && argc == 3) return atoi(argv[2]);
    if (!strcmp(argv[1], "hang")) for (;;) pause();
#ifdef __ARM_FEATURE_DOTPROD
    if (!strcmp(argv[1], "sdot")) {  /* ARMv8.2 dotprod: SIGILL on a CPU without it */
        __asm__ volatile("sdot v0.4s, v1.16b, v2.16b" ::: "v0");
        printf("sdot ok\n");
        return 0;
    }
#endif
    return 2;
}
"""


def build_probe(out_dir: Path, cc: str, *flags: str) -> Path:
    """Compiles the probe with `cc` (e.g. aarch64-linux-gnu-gcc -static) into out_dir."""
    src = out_dir / "probe.c"
    src.write_text(PROBE_C)
    exe = out_dir / f"probe-{cc.split('-')[0]}"
    subprocess.run([cc, "-O1", *flags, "-o", str(exe), str(src)], check=True, capture_output=True, timeout=120)
    return exe


def pids_with_cwd_under(directory: str) -> list[int]:
    """Processes whose working directory is inside `directory`: what a device command leaves behind."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cwd = os.readlink(f"/proc/{entry}/cwd")
            except OSError:
                continue
            if cwd == directory or cwd.startswith(directory.rstrip("/") + "/"):
                found.append(int(entry))
    return found


def wait_no_pids_under(directory: str, within_s: float = 3.0) -> list[int]:
    """SIGKILL lands asynchronously: poll briefly, return whatever is still alive."""
    deadline = time.monotonic() + within_s
    while (pids := pids_with_cwd_under(directory)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pids
