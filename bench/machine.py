"""One line describing the machine a benchmark ran on, for its report."""
import os
import platform
import re


def machine():
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        info = ""
    m = re.search(r"model name\s*:\s*(.+)", info)
    cpu = m.group(1) if m else "unknown"
    # Whether KVM could be used at all: the CPU flags for hardware virtualisation.
    virt = "vmx/svm present" if re.search(r"\b(vmx|svm)\b", info) else "no vmx/svm"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} CPUs ({cpu}, {virt}), {mem:.0f} GiB, {platform.platform()}"
