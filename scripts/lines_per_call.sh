#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Cache lines touched per call, for issue 14's "where the time goes": the
# floor (bench_track's floor_track), segops_track_prepared() and
# segops_track(), each run by bench_track in burst mode (1 thread, 20 calls
# then a 200 us sleep) under valgrind's lackey, which prints every
# instruction fetch and data access with its address.
#
#   scripts/lines_per_call.sh [BUILD_DIR] [--calls N] [--capacity N] [--details]
#
# BUILD_DIR (default build/prof) must hold a bench_track with debug info;
# this script builds nothing:
#   cmake -S . -B build/prof -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS=-g
#   cmake --build build/prof -j2 --target bench_track
# --calls: measured calls per path (default 1000, after bench_track's 2,000
# warm-up calls); --capacity: bench_track's --capacity (slots per lane,
# default 8192); --details: also one row per place a call touches (object
# and offset, struct members, the code that touched it first, the other
# thread's code that touched it last) and the code lines by function.
#
# How (scripts/lines_per_call.py has the detail):
#   - a call is what bench_track times: from after the fenced rdtsc that
#     opens the bracket to the rdtscp that closes it, on the producer
#     thread (valgrind runs one thread at a time; --trace-sched says which).
#     Within it, the harness's own instructions in run() (the bracket, the
#     switch on the implementation, counting the result) are told apart
#     from the call's by objdump's inline chains: the call is do_track's
#     case (arguments, the call instruction), floor_track inlined, and all
#     it calls (the library, the PLT, libc's memcpy);
#   - a line is 64 bytes; an access that straddles two counts both;
#   - the addresses are named by gdb, attached through valgrind's gdbserver
#     at the first call (the client, its lanes, ring entries, slot slab;
#     the event, props, values, strings and handle the call is given; the
#     floor's struct, ring and slots), by the clone() and arch_prctl()
#     system calls (each thread's stack and TLS), valgrind's own map (-d:
#     where the binary and the libraries are) and the binary's sections.
# Needs valgrind (lackey), gdb with vgdb, binutils and python3.  About 90 s
# on 2 vCPUs with --calls 1000.  KEEP_TMP=1 keeps the intermediate files
# (each run's calls as JSON, gdb's output) and says where.
set -euo pipefail
cd "$(dirname "$0")/.."
cmdline="scripts/lines_per_call.sh $*"
build=build/prof
calls=1000
capacity=()
details=()
while [ $# -gt 0 ]; do
    case "$1" in
    --calls) calls=$2; shift 2 ;;
    --capacity) capacity=(--capacity "$2"); shift 2 ;;
    --details) details=(--details); shift ;;
    -h | --help) sed -n '3,/^set -e/p' "$0" | sed 's/^# \{0,1\}//' | head -n -1; exit 0 ;;
    -*) echo "lines_per_call.sh: unknown option $1" >&2; exit 2 ;;
    *) build=$1; shift ;;
    esac
done
bin=$build/bench/bench_track
if [ ! -x "$bin" ]; then
    echo "lines_per_call.sh: no $bin; build it first:" >&2
    echo "  cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS=-g && cmake --build $build -j2 --target bench_track" >&2
    exit 1
fi
if ! readelf -S "$bin" | grep -q '\.debug_line'; then
    echo "lines_per_call.sh: $bin has no debug info (configure with -DCMAKE_C_FLAGS=-g)" >&2
    exit 1
fi
for t in valgrind vgdb gdb objdump readelf addr2line nm python3; do
    command -v "$t" >/dev/null || { echo "lines_per_call.sh: $t not found" >&2; exit 1; }
done
if ! valgrind --tool=lackey --help >/dev/null 2>&1; then
    echo "lines_per_call.sh: valgrind has no lackey tool" >&2
    exit 1
fi
py=scripts/lines_per_call.py
tmp=$(mktemp -d)
vpid=""
cleanup() {
    if [ -n "$vpid" ]; then kill "$vpid" 2>/dev/null || true; fi
    if [ -n "${KEEP_TMP:-}" ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

python3 $py static "$bin" bench/bench_track.c >"$tmp/static.json"
# the layouts of the structs whose members the details name
{
    echo "set max-value-size unlimited"
    echo "set width 0"
    for t in struct_segops_client struct_sg_lane struct_floor struct_floor_ring segops_event \
        segops_prop segops_value struct_segops_prepared; do
        printf 'echo TYPE %s\\n\n' "$t"
        echo "ptype/o ${t/#struct_/struct }"
    done
} >"$tmp/ptype.gdb"
gdb -batch -nx -x "$tmp/ptype.gdb" "$bin" >"$tmp/ptype.txt" 2>/dev/null || true

claim_line=$(grep -n 'floor_mine = r;' bench/bench_track.c | head -1 | cut -d: -f1)

# gdb's commands for one path: print the addresses of what the call touches
gdb_script() {
    local impl=$1 prefix=$2
    cat <<EOF
set pagination off
set confirm off
set width 0
set max-value-size unlimited
target remote | vgdb --vgdb-prefix=$prefix
EOF
    # gdb's convenience variables, not the shell's
    # shellcheck disable=SC2016
    local client='
printf "OBJ client %lx %lu struct_segops_client\n", c, sizeof(*c)
printf "OBJ lanes %lx %lu arr:struct_sg_lane:%lu\n", c->q.lanes, c->q.nlanes * sizeof(*c->q.lanes), sizeof(*c->q.lanes)
printf "OBJ slots %lx %lu slot:%u\n", c->q.slab, c->q.slab_size, c->q.slot_size
printf "OBJ rings %lx %lu\n", c->q.bufs, (*(unsigned long *)((char *)c->q.bufs - 8) & ~7UL) - 16
set $i = 0
while $i < c->q.nlanes && $i < 4
printf "OBJ filled%d %lx %lu\n", $i, c->q.lanes[$i].filled_buf, (unsigned long)c->q.lanes[$i].filled.size * sizeof(*c->q.bufs)
printf "OBJ free%d %lx %lu\n", $i, c->q.lanes[$i].free_buf, (unsigned long)c->q.lanes[$i].free.size * sizeof(*c->q.bufs)
printf "OBJ hot%d %lx %lu\n", $i, c->q.lanes[$i].hot_buf, (unsigned long)c->q.lanes[$i].hot.size * sizeof(*c->q.bufs)
set $i = $i + 1
end'
    case $impl in
    floor)
        cat <<EOF
tbreak floor_claim
commands
silent
printf "OBJ floor %lx %lu struct_floor\n", f, sizeof(*f)
printf "OBJ floor.ev %lx %lu\n", &f->ev[0], (unsigned long)f->len
continue
end
break bench_track.c:$claim_line
commands
silent
printf "OBJ floor.ring %lx %lu struct_floor_ring\n", r, sizeof(*r)
printf "OBJ slots %lx %lu slot:%u\n", r->slots, (unsigned long)(f->cap * f->stride), f->stride
continue
end
EOF
        ;;
    prepared)
        cat <<EOF
tbreak segops_track_prepared
commands
silent
$client
printf "OBJ handle %lx %lu struct_segops_prepared\n", p, (*(unsigned long *)((char *)p - 8) & ~7UL) - 8
printf "OBJ vals %lx %lu arr:segops_value:%lu\n", values, n * sizeof(*values), sizeof(*values)
printf "OBJ str.user_id %lx %lu\n", user_id, \$_strlen(user_id) + 1
printf "OBJ str.value0 %lx %lu\n", values[0].str, \$_strlen(values[0].str) + 1
continue
end
EOF
        ;;
    segops)
        cat <<EOF
tbreak segops_track
commands
silent
$client
printf "OBJ ev %lx %lu segops_event\n", ev, sizeof(*ev)
printf "OBJ props %lx %lu arr:segops_prop:%lu\n", ev->payload, ev->payload_len * sizeof(*ev->payload), sizeof(*ev->payload)
printf "OBJ str.user_id %lx %lu\n", ev->user_id, \$_strlen(ev->user_id) + 1
printf "OBJ str.event_type %lx %lu\n", ev->event_type, \$_strlen(ev->event_type) + 1
printf "OBJ str.key0 %lx %lu\n", ev->payload[0].key, \$_strlen(ev->payload[0].key) + 1
printf "OBJ str.value0 %lx %lu\n", ev->payload[0].str, \$_strlen(ev->payload[0].str) + 1
printf "OBJ str.key1 %lx %lu\n", ev->payload[1].key, \$_strlen(ev->payload[1].key) + 1
continue
end
EOF
        ;;
    esac
    echo continue
}

runs=()
for impl in floor prepared segops; do
    prefix=$tmp/vgdb-$impl
    gdb_script "$impl" "$prefix" >"$tmp/$impl.gdb"
    # valgrind's log (the trace, fd 9) and its -d debug log (stderr) go down
    # one pipe, in the order written; the program's stdout to a file
    SEGOPS_IO=poll valgrind -d --tool=lackey --trace-mem=yes --trace-syscalls=yes \
        --trace-sched=yes --vgdb=yes --vgdb-error=0 --vgdb-prefix="$prefix" --log-fd=9 \
        "$bin" --impl "$impl" --threads 1 --mode burst --calls "$calls" "${capacity[@]}" \
        --budget-ms 600000 --no-parts 9>&1 2>&1 >"$tmp/$impl.out" |
        python3 $py scan "$tmp/static.json" >"$tmp/$impl.json" &
    vpid=$!
    for _ in $(seq 300); do
        compgen -G "$prefix-from-vgdb-to-*" >/dev/null && break
        sleep 0.1
    done
    gdb -batch -nx -x "$tmp/$impl.gdb" "$bin" >"$tmp/$impl.gdb.out" 2>&1 || true
    wait "$vpid"
    vpid=""
    case $impl in
    floor) label=floor ;;
    prepared) label=prepared ;;
    segops) label=plain ;;
    esac
    runs+=(--run "$label:$tmp/$impl.json:$tmp/$impl.gdb.out")
done

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
cc=$(readelf -p .comment "$bin" 2>/dev/null | grep -m1 -o 'GCC: .*\|clang version [^ ]*' || true)
btype=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
bflags=$(sed -n 's/^CMAKE_C_FLAGS:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
echo "# cache lines touched per call (valgrind lackey), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "# command: $cmdline   (from the repository root)"
echo "# machine: $cpu, $(nproc) vCPUs, $(uname -sr)"
echo "# binary: $bin (${cc:-compiler ?}; CMAKE_BUILD_TYPE=${btype:-?}, CMAKE_C_FLAGS=${bflags:-})"
echo "# each path: bench_track --impl IMPL --threads 1 --mode burst --calls $calls ${capacity[*]:+${capacity[*]} }--budget-ms 600000"
echo "#   --no-parts, under valgrind $(valgrind --version | sed 's/valgrind-//') --tool=lackey --trace-mem=yes;"
echo "#   2,000 warm-up calls first (not counted).  A line is 64 bytes.  Lines are counted per call,"
echo "#   distinct within the call; whether they were in a cache is not known here."
echo
python3 $py report --static "$tmp/static.json" --ptype "$tmp/ptype.txt" "${runs[@]}" "${details[@]}"
