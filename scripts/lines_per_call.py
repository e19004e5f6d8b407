#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Cache lines touched per call, from a valgrind lackey trace of bench_track.

Used by scripts/lines_per_call.sh (read it first); three subcommands:

  static BIN SRC          what the trace is cut by, from BIN's disassembly
                          and debug info: the bracket's two markers in run(),
                          run()'s instructions that belong to the harness,
                          sections, symbols, the TLS segment (JSON, stdout)
  scan STATIC             reads the lackey log (--trace-mem=yes
                          --trace-syscalls=yes --trace-sched=yes, and -d on
                          the same stream) on stdin; writes every measured
                          call's lines (JSON, stdout)
  report ...              the tables (see --help)

What a "call" is: bench_track times each call with a fenced rdtsc bracket
(tsc_begin: lfence; rdtsc; lfence ... tsc_end: rdtscp).  A window is what
the producer thread executes from the instruction after tsc_begin's second
lfence up to tsc_end's rdtscp.  In it, the instructions of run() that are
the harness (the bracket's arithmetic, the dispatch on the implementation
(do_track's switch), counting the result) are told apart from the call's
own -- do_track's case for this implementation (argument set-up, the call
instruction), floor_track() inlined, and everything outside run() (the
library, the PLT, libc's memcpy) -- by the inline chain that objdump -l
--inlines gives for each address of run().  Lines touched only by the
harness are counted in the "window" figures, not in the call's.

Threads: valgrind runs one thread at a time; --trace-sched says which.  The
producer is the thread that enters run(); other threads' accesses are not
counted in a call, but they are used to say, for each line a call touches,
whether another thread wrote it since the producer last touched it, or
touched it and the call writes it: the lines that another core would have
to hand over if the threads ran on two cores.  That depends on how valgrind
interleaved the threads (its own timing, not the machine's): an
indication, not a measurement.
"""
import bisect
import collections
import json
import os
import re
import statistics
import subprocess
import sys

LINE = 64


def sh(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


# --------------------------------------------------------------- static

def cmd_static(binpath, src):
    # symbols (static addresses)
    syms = []
    for ln in sh("nm", "-S", "--defined-only", binpath).splitlines():
        p = ln.split()
        if len(p) == 4:
            syms.append((int(p[0], 16), int(p[1], 16), p[2], p[3]))
    run = [s for s in syms if s[3] == "run" and s[2] in "tT"]
    if len(run) != 1:
        sys.exit("lines_per_call: no single run() in %s" % binpath)
    run_lo, run_sz = run[0][0], run[0][1]
    # the switch of do_track: its source line
    srcl = open(src).read().splitlines()
    sw_line = None
    in_dt = False
    for i, t in enumerate(srcl, 1):
        if "int do_track(" in t:
            in_dt = True
        if in_dt and "switch (impl)" in t:
            sw_line = i
            break
    if sw_line is None:
        sys.exit("lines_per_call: no 'switch (impl)' in do_track() of %s" % src)
    dis = sh("objdump", "-d", "-l", "--inlines", "--no-show-raw-insn",
             "--start-address=0x%x" % run_lo, "--stop-address=0x%x" % (run_lo + run_sz), binpath)
    insns = []  # (addr, mnemonic, func, line, chain)
    func, lineno, chain = None, None, []
    re_fn = re.compile(r"^(\w+)\(\):$")
    re_inl = re.compile(r"^inlined by (\S+):(\d+).*\((\w+)\)")
    re_loc = re.compile(r"^(/\S+|[\w.][\w./+-]*):(\d+)")
    re_ins = re.compile(r"^\s+([0-9a-f]+):\t(\S+)")
    for ln in dis.splitlines():
        m = re_ins.match(ln)
        if m:
            insns.append((int(m.group(1), 16), m.group(2), func, lineno, chain))
            chain = []
            continue
        m = re_fn.match(ln)
        if m:
            func, chain = m.group(1), []
            continue
        m = re_inl.match(ln)
        if m:
            chain = chain + [m.group(3)]
            continue
        m = re_loc.match(ln)
        if m:
            lineno, chain = int(m.group(2)), []
    starts, ends = [], []
    for i in range(len(insns) - 2):
        if insns[i][1] == "lfence" and insns[i + 1][1] == "rdtsc" and insns[i + 2][1] == "lfence":
            starts.append(insns[i + 2][0])
    ends = [a for a, mn, *_ in insns if mn == "rdtscp"]
    if len(starts) != 1 or len(ends) != 1:
        sys.exit("lines_per_call: expected one tsc_begin and one tsc_end in run(), found %d, %d"
                 % (len(starts), len(ends)))
    call_insns = []
    for a, mn, f, l, ch in insns:
        if f == "floor_track" or "floor_track" in ch or (f == "do_track" and l != sw_line):
            call_insns.append(a)
    # sections
    secs = []
    for ln in sh("readelf", "-SW", binpath).splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+(\S+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", ln)
        if m and int(m.group(3), 16):
            secs.append((m.group(1), int(m.group(3), 16), int(m.group(4), 16)))
    tls = None
    for ln in sh("readelf", "-lW", binpath).splitlines():
        p = ln.split()
        if p and p[0] == "TLS":
            memsz, align = int(p[5], 16), int(p[-1], 16)
            tls = (memsz + align - 1) // align * align
    tls_syms = []
    for ln in sh("readelf", "-sW", binpath).splitlines():
        p = ln.split()
        if len(p) >= 8 and p[3] == "TLS" and p[6] != "UND":
            tls_syms.append((int(p[1], 16), int(p[2], 0), p[7]))
    tls_names = {n for _, _, n in tls_syms}
    data_syms = [(a, s, t, n) for a, s, t, n in syms if t in "rRdDbBvV" and s and n not in tls_names]
    return {"bin": binpath, "run": [run_lo, run_lo + run_sz], "start": starts[0], "end": ends[0],
            "call_insns": call_insns, "sections": secs, "tls_block": tls,
            "data_syms": data_syms, "switch_line": sw_line,
            "funcs": sorted((a, s, n) for a, s, t, n in syms if t in "tTwW"),
            "tls_syms": tls_syms}


# ----------------------------------------------------------------- scan

RE_TRAIL = re.compile(r"(I  | [LSM] )([0-9a-f]+),(\d+)\s*$")
RE_SCHED = re.compile(r"SCHED\[(\d+)\]:\s+acquired lock")
RE_CLONE = re.compile(r"SYSCALL\[\d+,(\d+)\]\(56\) sys_clone \( \w+, 0x([0-9a-f]+), 0x[0-9a-f]+, "
                      r"0x[0-9a-f]+, 0x([0-9a-f]+) \)")
RE_FS = re.compile(r"SYSCALL\[\d+,(\d+)\]\(158\) arch_prctl \( 4098, (?:0x)?([0-9a-f]+) \)")
RE_BRK = re.compile(r"sys_brk \( 0x[0-9a-f]+ \) --> \[pre-success\] Success\(0x([0-9a-f]+)\)")
RE_MAIN = re.compile(r"sched_init_phase2: tid_main=\d+, cls_end=0x([0-9a-f]+), cls_sz=(\d+)")
RE_SEGNAME = re.compile(r"aspacem \((\d+),\d+,\d+\) (\S+)")
RE_SEG = re.compile(r"aspacem\s+\d+: (\w+)\s+([0-9a-f]+)-([0-9a-f]+)\s+\S+\s+(\S+)(.*)$")
RE_SHOW = re.compile(r"SHOW_SEGMENTS: Memory layout at client (\w+)")


def access(line):
    """(address, size) of a lackey access line ("I  addr,size" or
    " L addr,size"), or None when the line is not one."""
    try:
        a, s = line[3:].split(",")
        return int(a, 16), int(s)
    except ValueError:
        return None


def cmd_scan(st, inp):
    exe_path = st["bin"].split("/")[-1]
    run_lo_s, run_hi_s = st["run"]
    base = None
    start_prefix = end_prefix = run_prefix = None
    call_set = set()
    run_lo = run_hi = 0
    cur = 1
    prod = None
    in_win = False
    seq = 0
    p_seq = {}   # line -> seq of the producer's last access
    o_seq = {}   # line -> seq of another thread's last access
    o_wseq = {}  # line -> seq of another thread's last write
    o_wia = {}   # line -> the instruction record of another thread's last write
    o_ia = {}    # line -> the instruction record of another thread's last access
    last_oi = ""  # the last instruction record of a thread other than the producer
    calls = []
    win = None
    info = {"clones": [], "fs": [], "brk": [], "main_stack": None, "maps": {}, "names": {}}
    table = None
    cur_ia, cur_call = 0, False

    def begin():
        return {"ni_call": 0, "ni_all": 0, "il_call": {}, "il_all": set(), "d": {}}

    def data(kind, a, s):
        nonlocal seq
        seq += 1
        l0, l1 = a >> 6, (a + s - 1) >> 6
        if cur == prod:
            if in_win:
                d = win["d"]
                for l in range(l0, l1 + 1):
                    e = d.get(l)
                    ps = p_seq.get(l, -1)
                    if e is None:
                        xw, xa = o_wseq.get(l, -1) > ps, o_seq.get(l, -1) > ps
                        e = d[l] = [a, cur_ia, 0, xw, xa, [], o_wia.get(l, "") if xw else
                                    o_ia.get(l, "") if xa else ""]
                    e[2] |= (2 if kind != "L" else 1) | (4 if cur_call else 8)
                    if kind == "M":
                        e[2] |= 1
                    if cur_call and len(e[5]) < 8:
                        acc = (a, s, kind, cur_ia)
                        if acc not in e[5]:
                            e[5].append(acc)
                    p_seq[l] = seq
            else:
                for l in range(l0, l1 + 1):
                    p_seq[l] = seq
        else:
            for l in range(l0, l1 + 1):
                o_seq[l] = seq
                o_ia[l] = last_oi
                if kind != "L":
                    o_wseq[l] = seq
                    o_wia[l] = last_oi

    def instr(a, s):
        nonlocal cur_ia, cur_call
        cur_ia = a
        cur_call = not (run_lo <= a < run_hi) or a in call_set
        win["ni_all"] += 1
        for l in range(a >> 6, ((a + s - 1) >> 6) + 1):
            win["il_all"].add(l)
            if cur_call:
                win["il_call"].setdefault(l, a)
        if cur_call:
            win["ni_call"] += 1

    def other(line):
        nonlocal cur, table, base, start_prefix, end_prefix, run_prefix, call_set, run_lo, run_hi
        nonlocal prod, in_win, win
        if "SCHED[" in line:
            m = RE_SCHED.search(line)
            if m:
                cur = int(m.group(1))
        elif "SYSCALL[" in line:
            m = RE_CLONE.search(line)
            if m:
                info["clones"].append([int(m.group(1)), int(m.group(2), 16), int(m.group(3), 16)])
            m = RE_FS.search(line)
            if m:
                info["fs"].append([int(m.group(1)), int(m.group(2), 16)])
            m = RE_BRK.search(line)
            if m:
                info["brk"].append(int(m.group(1), 16))
        elif "aspacem" in line:
            m = RE_SHOW.search(line)
            if m:
                table = m.group(1)
                info["maps"][table] = []
                return
            m = RE_SEGNAME.search(line)
            if m:
                info["names"][m.group(1)] = m.group(2)
                return
            m = RE_SEG.search(line)
            if m and table:
                nm = re.search(r"\((\d+),\d+\)\s*$", m.group(5))
                info["maps"][table].append([m.group(1), int(m.group(2), 16), int(m.group(3), 16) + 1,
                                            m.group(4), info["names"].get(nm.group(1)) if nm else None])
                if (table == "startup" and base is None and nm and
                        info["names"].get(nm.group(1), "").endswith("/" + exe_path) and " o=0 " in m.group(5) + " "):
                    base = int(m.group(2), 16)
                    start_prefix = "I  %08x," % (base + st["start"])
                    run_prefix = "I  %08x," % (base + run_lo_s)
                    end_prefix = "I  %08x," % (base + st["end"])
                    call_set = {base + a for a in st["call_insns"]}
                    run_lo, run_hi = base + run_lo_s, base + run_hi_s
        elif "sched_init_phase2" in line:
            m = RE_MAIN.search(line)
            if m:
                info["main_stack"] = [int(m.group(1), 16) + 1 - int(m.group(2)), int(m.group(1), 16) + 1]
        m = RE_TRAIL.search(line)
        if m and not line.startswith(m.group(1)):
            rec(m.group(1), int(m.group(2), 16), int(m.group(3)))

    def rec(kind, a, s):
        # the slow path of one record (lines that carried other text)
        nonlocal prod, in_win, win, last_oi
        if kind == "I  ":
            if prod is None and run_prefix and a == base + run_lo_s:
                prod = cur
            if cur != prod:
                last_oi = "I  %08x,%d" % (a, s)
                return
            if in_win:
                if a == base + st["end"]:
                    finish()
                else:
                    instr(a, s)
            elif a == base + st["start"]:
                in_win, win = True, begin()
        else:
            data(kind.strip(), a, s)

    def finish():
        nonlocal in_win, win
        d = win["d"]
        calls.append({"ni_call": win["ni_call"], "ni_all": win["ni_all"],
                      "il_call": len(win["il_call"]), "il_all": len(win["il_all"]),
                      "il_call_first": sorted(win["il_call"].values()),
                      "d": [[l] + e[:6] + [rec_addr(e[6])] for l, e in d.items()]})
        in_win, win = False, None

    def rec_addr(r):
        try:
            return int(r[3:].split(",")[0], 16)
        except ValueError:
            return 0

    for line in inp:
        c = line[0] if line else ""
        if c == "I":
            if cur != prod:
                if prod is None and run_prefix and line.startswith(run_prefix):
                    prod = cur
                else:
                    last_oi = line
                    continue
            if in_win:
                if line.startswith(end_prefix):
                    finish()
                    continue
                acc = access(line)
                if acc is None:
                    other(line)
                    continue
                instr(*acc)
            elif line.startswith(start_prefix):
                in_win, win = True, begin()
            continue
        if c == " " and line[2:3] == " ":
            acc = access(line)
            if acc is None:
                other(line)
                continue
            data(line[1], *acc)
            continue
        other(line)
    if base is None:
        sys.exit("lines_per_call: no -d segment table for %s in the log" % exe_path)
    info["base"] = base
    info["prod"] = prod
    json.dump({"info": info, "calls": calls}, sys.stdout)


# --------------------------------------------------------------- report

COLS = ["stack", "TLS", "ctx", "lane", "rings", "slot", "args", "static", "other"]
COL_DOC = {
    "stack": "the producer's stack, but for the objects under args",
    "TLS": "static TLS and the thread control block (fs-relative)",
    "ctx": "the client (struct segops_client) / the floor's struct floor, but for the parts below",
    "lane": "the lanes (struct sg_lane) / the floor's ring header (struct floor_ring)",
    "rings": "the queue's ring entries (q->bufs: filled, free, hot)",
    "slot": "the slots (the queue's mmap slab / the floor's slot mmap)",
    "args": "what the caller passes: the segops_event, props, values on the caller's stack, "
            "their strings, the prepared handle; the floor's encoded event (f->ev)",
    "static": "the binary's .rodata/.data/.bss/.got and the shared libraries' data",
    "other": "anything else (heap, other mappings)",
}


def obj_col(name):
    if name in ("client", "floor"):
        return "ctx"
    if name == "lanes" or name == "floor.ring":
        return "lane"
    if name == "rings" or re.match(r"(filled|free|hot)\d", name):
        return "rings"
    if name == "slots":
        return "slot"
    if name == "worker":
        return "other"
    return "args"


def pretty_type(t):
    if t == "-":
        return ""
    if t.startswith("arr:"):
        _, ty, es = t.split(":")
        return ", an array of %s (%s bytes each)" % (ty.replace("struct_", "struct "), es)
    if t.startswith("slot:"):
        return ", slots of %s bytes" % t[5:]
    return ", " + t.replace("struct_", "struct ")


def parse_gdb(path):
    objs, sp = [], None
    try:
        txt = open(path).read()
    except OSError:
        return objs, sp, ""
    for ln in txt.splitlines():
        p = ln.split()
        if len(p) >= 4 and p[0] == "OBJ":
            objs.append([p[1], int(p[2], 16), int(p[3]), p[4] if len(p) > 4 else "-"])
        elif len(p) == 2 and p[0] == "SP":
            sp = int(p[1], 16)
    return objs, sp, txt


def parse_ptype(txt):
    """ptype/o output -> {type: [(offset, size, path)]} (leaves)"""
    out = {}
    cur, stack = None, []
    re_l = re.compile(r"^/\*\s+(\d+)(?:\s*:\s*\d+)?\s*\|\s*(\d+) \*/(\s*)(.*)$")
    for ln in txt.splitlines():
        m = re.match(r"^TYPE (.+)$", ln)
        if m:
            cur = m.group(1)
            out[cur] = []
            stack = []
            continue
        if cur is None:
            continue
        m = re_l.match(ln)
        if m:
            off, size, decl = int(m.group(1)), int(m.group(2)), m.group(4).strip()
            if decl.startswith("type ="):
                continue
            if decl.endswith("{"):
                stack.append([])
                continue
            nm = re.search(r"(\w+)(\[\d+\])*;$", decl)
            leaf = (off, size, nm.group(1) if nm else decl)
            (stack[-1] if stack else out[cur]).append(leaf)
            continue
        m = re.match(r"^\s+\} (\w+)(\[\d+\])*;", ln)
        if m and stack:
            inner = stack.pop()
            named = [(o, s, m.group(1) + "." + n) for o, s, n in inner]
            (stack[-1] if stack else out[cur]).extend(named)
    return out


def members(layout, off, size):
    if not layout:
        return ""
    names = []
    for o, s, n in layout:
        if o < off + size and off < o + s and not n.endswith("pad") and n not in names:
            names.append(n)
    return ",".join(names[:4]) + (",..." if len(names) > 4 else "")


class Classifier:
    def __init__(self, st, info, objs):
        self.base = info["base"]
        b = self.base
        self.objs = sorted(objs, key=lambda o: o[2])  # smallest first
        self.ranges = []  # (lo, hi, col, label)
        # stacks and TLS: every thread's
        for tid, child_stack, tls in info["clones"]:
            self.ranges.append((child_stack - (8 << 20), child_stack, "stack", "thread stack"))
            self.ranges.append((child_stack, tls + 0x1000, "TLS", "static TLS + TCB"))
        if info.get("main_stack"):
            lo, hi = info["main_stack"]
            self.ranges.append((lo, hi, "stack", "main stack"))
        for tid, fs in info["fs"]:
            self.ranges.append((fs - 0x1000, fs + 0x1000, "TLS", "main thread TLS + TCB"))
        for name, a, size in st["sections"]:
            col = "static" if not name.startswith(".text") and not name.startswith(".plt") else "other"
            self.ranges.append((b + a, b + a + size, col, "exe " + name))
        maps = info["maps"].get("shutdown") or info["maps"].get("startup") or []
        for kind, lo, hi, perm, path in maps:
            if path and kind in ("file", "FILE") and not path.endswith("/" + st["bin"].split("/")[-1]):
                self.ranges.append((lo, hi, "static", path.split("/")[-1] + " " + perm))
        if info["brk"]:
            lo, hi = min(info["brk"]), max(info["brk"])
            self.ranges.append((lo, hi, "other", "heap (brk)"))
        for kind, lo, hi, perm, path in maps:
            if kind in ("anon", "ANON") and not path:
                self.ranges.append((lo, hi, "other", "anon mmap %x-%x" % (lo, hi)))
        self.tls_block = st["tls_block"]
        self.tls_syms = st.get("tls_syms") or []
        self.data_syms = sorted(st["data_syms"])
        self.data_keys = [s[0] for s in self.data_syms]
        self.sections = st["sections"]
        self.tcbs = [tls for _, _, tls in info["clones"]] + [fs for _, fs in info["fs"]]

    def obj(self, a):
        for o in self.objs:
            if o[1] <= a < o[1] + o[2]:
                return o
        return None

    def col(self, a):
        o = self.obj(a)
        if o:
            return obj_col(o[0]), o
        for lo, hi, col, label in self.ranges:
            if lo <= a < hi:
                return col, None
        return "other", None

    def where(self, a):
        o = self.obj(a)
        if o:
            off = a - o[1]
            if o[3].startswith("slot:"):
                stride = int(o[3][5:])
                return o, "%s, slot line %d" % (o[0], (off % stride) // LINE), off % stride
            if o[3].startswith("arr:"):
                es = int(o[3].split(":")[2])
                return o, "%s[%d]+0x%x" % (o[0], off // es, (off % es) & ~(LINE - 1)), off
            return o, "%s+0x%x" % (o[0], off & ~(LINE - 1)), off
        for lo, hi, col, label in self.ranges:
            if lo <= a < hi:
                if col == "TLS":
                    tcb = min(self.tcbs, key=lambda t: abs(t - a)) if self.tcbs else None
                    if tcb is not None:
                        d = a - tcb
                        nm = ""
                        if d < 0 and self.tls_block and -d <= self.tls_block:
                            for sa, ss, sn in self.tls_syms:
                                if tcb - self.tls_block + sa <= a < tcb - self.tls_block + sa + max(ss, 1):
                                    nm = " " + sn
                        elif d >= 0:
                            nm = " (TCB)"
                        return None, "fs%+#x%s" % (d & ~(LINE - 1) if d >= 0 else -((-d + LINE - 1) & ~(LINE - 1)), nm), None
                if col == "stack":
                    return None, "stack (top-0x%x)" % ((hi - a + LINE - 1) & ~(LINE - 1)), None
                if label.startswith("exe "):
                    sa = a - self.base
                    i = bisect.bisect_right(self.data_keys, sa) - 1
                    if i >= 0 and self.data_syms[i][0] <= sa < self.data_syms[i][0] + self.data_syms[i][1]:
                        return None, "%s %s+0x%x" % (label, self.data_syms[i][3], sa - self.data_syms[i][0]), None
                    sec = next((x for x in self.sections if x[0] == label[4:]), None)
                    off = sa - sec[1] if sec else sa
                    return None, "%s+0x%x" % (label, off & ~(LINE - 1)), None
                return None, label, None
        return None, "?", None


def med_mean(v):
    if not v:
        return "-"
    m = statistics.median(v)
    return "%s / %.1f" % (("%d" % m) if m == int(m) else ("%.1f" % m), statistics.mean(v))


def summarize(calls, cl):
    rows = {"first": [], "rest": []}
    for k, c in enumerate(calls):
        per = collections.Counter()
        d_call = d_all = xw = xa = 0
        for l, a, ia, bits, w, x, accs, who in c["d"]:
            d_all += 1
            if not bits & 4:
                continue
            d_call += 1
            aa = accs[0][0] if accs else a
            per[cl.col(aa)[0]] += 1
            xw += bool(w or (x and bits & 2))
            xa += bool(x)
        r = {"ni_call": c["ni_call"], "ni_all": c["ni_all"], "il_call": c["il_call"],
             "il_all": c["il_all"], "d_call": d_call, "d_all": d_all, "xw": xw, "xa": xa}
        for col in COLS:
            r[col] = per[col]
        rows["first" if k % 20 == 0 else "rest"].append(r)
    return rows


def details(calls, cl, layouts, symbolize, libsym):
    """the calls' data lines, grouped by where they are: the steady calls
    (2-20 of a burst) and the first after the sleep apart"""
    n = {"s": 0, "f": 0}
    groups = {}
    for k, c in enumerate(calls):
        kind = "f" if k % 20 == 0 else "s"
        n[kind] += 1
        seen = set()
        for l, a, ia, bits, w, x, accs, who in c["d"]:
            if not bits & 4:
                continue
            a0 = accs[0][0] if accs else a
            o, key, off = cl.where(a0)
            if o and (o[0] == "rings" or re.match(r"(filled|free|hot)\d", o[0])):
                key = "%s (an entry line)" % o[0]
            col = cl.col(a0)[0]
            g = groups.setdefault(key, {"s": 0, "f": 0, "xws": 0, "xwf": 0, "xas": 0, "xaf": 0,
                                        "w": 0, "col": col, "mem": set(), "a0": a0,
                                        "code": collections.Counter(),
                                        "who": collections.Counter()})
            if key in seen:
                continue
            seen.add(key)
            g[kind] += 1
            g["xw" + kind] += bool(w or (x and bits & 2))
            g["xa" + kind] += bool(x)
            g["w"] += bool(bits & 2)
            if accs:
                g["code"][accs[0][3]] += 1
            if who:
                g["who"][who] += 1
            lay = None
            if o:
                t = o[3]
                lay = layouts.get(t.split(":")[1] if t.startswith("arr:") else t)
            if lay is not None:
                for aa, ss, kk, _ in accs:
                    offa = aa - o[1]
                    if o[3].startswith("slot:"):
                        offa %= int(o[3][5:])
                    if offa < 0:
                        continue
                    if o[3].startswith("arr:"):
                        offa %= int(o[3].split(":")[2])
                    g["mem"].add(members(lay, offa, ss))
    out = []

    def pct(a, b):
        return "%.0f" % (100.0 * a / b) if b else "-"

    for key, g in sorted(groups.items(), key=lambda kv: (COLS.index(kv[1]["col"]), -kv[1]["s"], kv[0])):
        code = g["code"].most_common(1)[0][0] if g["code"] else None
        who = g["who"].most_common(1)[0][0] if g["who"] else None
        mem = ",".join(sorted(m for m in g["mem"] if m))
        if not mem:
            mem = libsym(g["a0"]) or ""
        out.append((g["col"], key, pct(g["s"], n["s"]), pct(g["f"], n["f"]), "W" if g["w"] else "R",
                    "%s / %s" % (pct(g["xws"], g["s"]), pct(g["xwf"], g["f"])),
                    "%s / %s" % (pct(g["xas"], g["s"]), pct(g["xaf"], g["f"])),
                    mem[:70], symbolize(code) if code else "", symbolize(who) if who else ""))
    return out


def code_lines(st, base, calls, sym):
    """the steady calls' instruction lines, by the function of the first
    instruction run in each (mean per call)"""
    funcs = st["funcs"]
    keys = [f[0] for f in funcs]
    cnt = collections.Counter()
    steady = [c for k, c in enumerate(calls) if k % 20]
    for c in steady:
        for a in c["il_call_first"]:
            sa = a - base
            i = bisect.bisect_right(keys, sa) - 1
            if i >= 0 and funcs[i][0] <= sa < funcs[i][0] + max(funcs[i][1], 1):
                name = funcs[i][2]
                if name == "run":
                    name = "run (inlined: do_track's case, floor_track)"
            else:
                t = sym(a)
                name = re.sub(r"\+\d+ ", " ", t) if t != "?" else "?"
            cnt[name] += 1
    n = max(len(steady), 1)
    parts = ["%s %.1f" % (nm, v / n) for nm, v in cnt.most_common()]
    return "Instruction lines per steady call, by function: " + "; ".join(parts) + "."


def make_symbolizer(st, base, maps, addrs):
    """addr -> 'func file:line' (code of the binary), 'PLT' (its PLT
    stubs), 'symbol+off (lib)' (code or data of a shared library)"""
    res = {}
    binpath = st["bin"]
    exe_name = "/" + binpath.split("/")[-1]
    plt = [(base + a, base + a + sz) for nm, a, sz in st["sections"] if nm.startswith(".plt")]
    file_maps = [(lo, hi, path) for kind, lo, hi, perm, path in maps if path]
    lib_lo = {}
    for lo, hi, path in file_maps:
        lib_lo[path] = min(lo, lib_lo.get(path, lo))
    exe_pc, libs = [], collections.defaultdict(list)
    for a in sorted(addrs):
        if any(lo <= a < hi for lo, hi in plt):
            res[a] = "PLT stub"
            continue
        owner = next((p for lo, hi, p in file_maps if lo <= a < hi), None)
        if owner and owner.endswith(exe_name):
            exe_pc.append(a)
        elif owner:
            libs[owner].append((a, a - lib_lo[owner]))
    if exe_pc:
        out = sh("addr2line", "-f", "-e", binpath, *["0x%x" % (a - base) for a in exe_pc]).splitlines()
        for i, a in enumerate(exe_pc):
            fn, loc = out[2 * i], out[2 * i + 1]
            loc = loc.split(" ")[0]
            root = os.getcwd() + "/"
            if loc.startswith(root):
                loc = loc[len(root):]
            elif loc.startswith("/usr/include/"):
                loc = "<%s>" % loc[len("/usr/include/"):]
            res[a] = "%s %s" % (fn, loc)
    for path, lst in libs.items():
        cmds = []
        for a, off in lst:
            cmds += ["-ex", "echo @\\n", "-ex", "info symbol 0x%x" % off]
        try:
            out = subprocess.run(["gdb", "-batch", "-nx"] + cmds + [path], capture_output=True,
                                 text=True).stdout
        except OSError:
            out = ""
        outs = [o.strip().splitlines()[0] if o.strip() else "" for o in out.split("@\n")[1:]]
        for i, (a, off) in enumerate(lst):
            t = outs[i] if i < len(outs) else ""
            t = t.split(" in section")[0].replace(" + ", "+") if " in section" in t else "+0x%x" % off
            res[a] = "%s (%s)" % (t, path.split("/")[-1])
    return lambda a: res.get(a, "?")


def cmd_report(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="lines_per_call.py report")
    ap.add_argument("--static", required=True)
    ap.add_argument("--ptype", required=True)
    ap.add_argument("--run", action="append", required=True,
                    help="LABEL:scan.json:gdb.out (in the order of the table)")
    ap.add_argument("--details", action="store_true")
    a = ap.parse_args(argv)
    st = json.load(open(a.static))
    layouts = parse_ptype(open(a.ptype).read())
    results = []
    for spec in a.run:
        label, scan, gdbout = spec.split(":")
        sc = json.load(open(scan))
        objs, sp, gtxt = parse_gdb(gdbout)
        if not objs:
            print("# %s: no object addresses from gdb (see %s)" % (label, gdbout))
        cl = Classifier(st, sc["info"], objs)
        rows = summarize(sc["calls"], cl)
        results.append((label, sc, objs, cl, rows))

    def cell(rows, key):
        return med_mean([r[key] for r in rows])

    print("## per call: median / mean over the calls\n")
    print("| path | calls | instructions | I-lines | D-lines | " + " | ".join(COLS) +
          " | handed over |")
    print("|---|---|---|---|---|" + "---|" * len(COLS) + "---|")
    for label, sc, objs, cl, rows in results:
        for which, title in (("rest", "steady (calls 2-20 of a burst)"),
                             ("first", "first after the 200 us sleep")):
            r = rows[which]
            if not r:
                continue
            print("| %s, %s | %d | %s | %s | %s | %s | %s |" % (
                label, title, len(r), cell(r, "ni_call"), cell(r, "il_call"), cell(r, "d_call"),
                " | ".join(cell(r, c) for c in COLS), cell(r, "xw")))
    print("\n## the whole bracket (the call plus the harness's dispatch and counting: what "
          "bench_track times)\n")
    print("| path | instructions | I-lines | D-lines |")
    print("|---|---|---|---|")
    for label, sc, objs, cl, rows in results:
        r = rows["rest"] + rows["first"]
        print("| %s | %s | %s | %s |" % (label, cell(r, "ni_all"), cell(r, "il_all"),
                                           cell(r, "d_all")))
    print("\n## columns\n")
    for c in COLS:
        print("- %s: %s" % (c, COL_DOC[c]))
    print("- handed over: of the call's data lines, those another thread wrote since the "
          "producer last touched them, or touched and the call writes: the lines another core "
          "would have to hand over if the threads ran on two (MESI).  By valgrind's "
          "interleaving of the threads, which runs the program some 50x slower and one thread "
          "at a time: the other threads run in the sleeps, hardly ever within a burst, and the "
          "sender's timed work (the clock recalibration every ~100 ms) falls in far more "
          "bursts than on the machine -- an indication of which lines, not of how often")
    print("- valgrind does not report prefetches as accesses: a line the lane prefetches for "
          "writing (the next call's slot, a refill's 16 slots) is counted only when a load or "
          "store touches it, and its hand-over is counted as if not prefetched")
    print("- the floor's slots go round an 8,192-slot ring (4 MiB): in this run each is on "
          "first use; libsegops takes back first the slots the sender has just read (the "
          "lane's hot ring), so its slot line was last read by the sender")
    print("\n## ranges used\n")
    for label, sc, objs, cl, rows in results:
        info = sc["info"]
        print("%s: executable loaded at 0x%x; producer = valgrind thread %s" %
              (label, info["base"], info["prod"]))
        for name, lo, size, typ in sorted(objs, key=lambda o: o[1]):
            print("  %-14s %-6s 0x%x-0x%x (%d bytes)%s" % (
                name, obj_col(name), lo, lo + size, size, pretty_type(typ)))
        used = set()
        for c in sc["calls"]:
            for e in c["d"]:
                used.add(e[1])
        for tid, child_stack, tls in info["clones"]:
            mine = any(child_stack - (8 << 20) <= a < tls + 0x1000 for a in used)
            print("  thread%s: stack 0x%x-0x%x, TLS+TCB 0x%x-0x%x (fs 0x%x)"
                  % (" (the producer)" if mine else "", child_stack - (8 << 20), child_stack,
                     child_stack, tls + 0x1000, tls))
        shown = set()
        for lo, hi, col, label in cl.ranges:
            if col == "static" and label not in shown and any(lo <= a < hi for a in used):
                shown.add(label)
                print("  %-21s 0x%x-0x%x" % (label + ":", lo, hi))
        if info.get("main_stack"):
            print("  main stack 0x%x-0x%x; main fs %s" % (
                info["main_stack"][0], info["main_stack"][1],
                ", ".join("0x%x" % fs for _, fs in info["fs"])))
        if info["brk"]:
            print("  heap (brk) 0x%x-0x%x" % (min(info["brk"]), max(info["brk"])))
        print("  (objects first, the smallest that holds the address; then stacks, TLS, the "
              "binary's sections, the libraries' mappings, the heap, other mappings)")
    if not a.details:
        return
    print("\n## every data line a call touches, one row per place: in how many calls "
          "(steady ones / the first after the sleep)\n")
    print("Rows: objects by offset (line-aligned); ring entries by ring; slots by the line "
          "within the slot; stack lines from the top of the thread's stack; TLS from the thread "
          "pointer (fs).  'handed over' (see above) and 'other thread touched' (read or wrote "
          "it since the producer last touched it): in how many of the calls that touched the "
          "line (steady / first).\n")
    for label, sc, objs, cl, rows in results:
        maps = sc["info"]["maps"].get("shutdown") or []
        addrs = set()
        for c in sc["calls"]:
            for l, aa, ia, bits, w, x, accs, who in c["d"]:
                if accs:
                    addrs.add(accs[0][3])
                    addrs.add(accs[0][0])
                if who:
                    addrs.add(who)
            addrs.update(c["il_call_first"])
        sym = make_symbolizer(st, cl.base, maps, addrs)

        def libsym(a, sym=sym, cl=cl):
            col, o = cl.col(a)
            t = sym(a)
            return t if col == "static" and t not in ("?", "PLT stub") and "(" in t else ""

        print("### %s\n" % label)
        print(code_lines(st, cl.base, sc["calls"], sym) + "\n")
        print("| col | where (line) | % steady | % first | R/W | handed over % |"
              " other thread touched % | members / symbol | first touched by |"
              " the other thread's last access by |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for row in details(sc["calls"], cl, layouts, sym, libsym):
            print("| " + " | ".join(row) + " |")
        print()


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    if sys.argv[1] == "static":
        json.dump(cmd_static(sys.argv[2], sys.argv[3]), sys.stdout)
    elif sys.argv[1] == "scan":
        st = json.load(open(sys.argv[2]))
        cmd_scan(st, sys.stdin)
    elif sys.argv[1] == "report":
        cmd_report(sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
