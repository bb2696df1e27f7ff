# The in-guest bench's steps (test/bench/guest/guest-bench.ts), sourced by the guest's /init
# with virtfs mounted on /mnt. The host puts before this:
#   BENCH_RUNS       runs of every step on each server
#   BENCH_SEQ_MIB    size of the sequential file, MiB
#   BENCH_DIOD_MOUNT the mount command for diod on /tmp/diod (empty: virtfs alone)
# Each step prints `BENCH begin SERVER RUN STEP` and `BENCH end SERVER RUN STEP STATUS NANOSECONDS`;
# the host samples the server's CPU at those lines.
export HOME=/tmp

# step SERVER RUN NAME COMMAND...: every step starts with the guest's caches dropped, so what it
# needs comes from the server, not from an earlier step, and ends with a sync, so what it wrote
# reached the server (with cache=loose or mmap it may still sit in the guest's page cache).
step() {
  local s=$1 r=$2 n=$3 t0 t1 rc
  shift 3
  sync
  echo 3 > /proc/sys/vm/drop_caches
  echo "BENCH begin $s $r $n"
  t0=$(now-ns)
  "$@" > /tmp/step.out 2>&1
  rc=$?
  sync
  t1=$(now-ns)
  echo "BENCH end $s $r $n $rc $((t1 - t0))"
  [ "$rc" -eq 0 ] || echo "BENCH error $s $r $n $(head -c 300 /tmp/step.out | tr '\n' ' ')"
}

list_tree() { ls -lR "$1" > /dev/null; }
read_tree() { find "$1" -type f -exec cat {} + > /dev/null; }
git_status() { git -C "$1" status --porcelain > /tmp/git-status.out; }

# suite SERVER MOUNTPOINT RUN: the steps in the order a user might do them, in a new directory.
suite() {
  local d=$2/run$3
  mkdir "$d" || return
  step "$1" "$3" tar-x tar -xf /bench/src.tar -C "$d"
  step "$1" "$3" ls-lR list_tree "$d/src"
  step "$1" "$3" read-all read_tree "$d/src"
  step "$1" "$3" cp-a cp -a "$d/src" "$d/copy"
  # Untimed: the index holds the host's inode numbers and ctimes, so the first status re-reads
  # every file and rewrites it; the timed one is the everyday status, an lstat per file.
  git -C "$d/src" status --porcelain > /dev/null 2>&1
  step "$1" "$3" git-status git_status "$d/src"
  echo "VALUE git-dirty-$1-$3 $(wc -l < /tmp/git-status.out)"
  step "$1" "$3" seq-write dd if=/dev/zero of="$d/big" bs=1M count="$BENCH_SEQ_MIB"
  step "$1" "$3" seq-read dd if="$d/big" of=/dev/null bs=1M
}

servers=virtfs
if [ -n "$BENCH_DIOD_MOUNT" ]; then
  mkdir -p /tmp/diod
  if eval "$BENCH_DIOD_MOUNT"; then servers="virtfs diod"; else echo "BENCH error diod 0 mount $BENCH_DIOD_MOUNT"; fi
fi
echo "VALUE mounts $(grep ' 9p ' /proc/mounts | tr '\n' ';')"

mountpoint_of() { if [ "$1" = diod ]; then echo /tmp/diod; else echo /mnt; fi; }
# The servers take turns going first, so a drift in the guest touches both alike.
run=1
while [ "$run" -le "$BENCH_RUNS" ]; do
  order=$servers
  [ $((run % 2)) -eq 0 ] && [ "$servers" = "virtfs diod" ] && order="diod virtfs"
  for server in $order; do suite "$server" "$(mountpoint_of "$server")" "$run"; done
  run=$((run + 1))
done
[ "$servers" = "virtfs diod" ] && umount /tmp/diod
echo "BENCH done"
