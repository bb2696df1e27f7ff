import { GUEST_MODULES } from '../../src/guest/guest-kernel.js';

/**
 * The guest's /init. It mounts virtfs from 10.0.2.100:564 (forwarded by qemu to the server on the
 * host's loopback), runs /workload.sh in the mount with two helpers, `check NAME CMD...` and
 * `expect_eq NAME ACTUAL EXPECTED`, each printing `CHECK ok|fail NAME ...`, then unmounts and
 * powers off. /config (from the per-run archive) sets MOUNT_OPTS (or a whole MOUNT_CMD) and WATCHDOG. The kernel client
 * has no timeouts, so a watchdog powers the guest off whatever happens.
 */
export const GUEST_INIT = `#!/bin/sh
export PATH=/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
MOUNT_OPTS=""
MOUNT_CMD=""
WATCHDOG=600
[ -f /config ] && . /config
(sleep "$WATCHDOG"; echo "GUEST WATCHDOG"; poweroff -f) &
for m in ${GUEST_MODULES.join(' ')}; do
  insmod /lib/modules/$m.ko || echo "GUEST INSMOD FAILED $m"
done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
check() {
  n=$1; shift
  if "$@" >/tmp/check.out 2>&1; then echo "CHECK ok $n"; else echo "CHECK fail $n exit $?: $(head -c 300 /tmp/check.out | tr '\\n' ' ')"; fi
}
expect_eq() {
  if [ "$2" = "$3" ]; then echo "CHECK ok $1"; else echo "CHECK fail $1 got [$2] expected [$3]"; fi
}
[ -n "$MOUNT_CMD" ] || MOUNT_CMD="mount -t 9p -o trans=tcp,port=564,version=9p2000.L$MOUNT_OPTS 10.0.2.100 /mnt"
echo "GUEST RUNNING $MOUNT_CMD"
if eval "$MOUNT_CMD"; then
  echo "GUEST MOUNTED"
  cd /mnt
  . /workload.sh
  cd /
  if umount /mnt; then echo "CHECK ok umount"; else echo "CHECK fail umount"; fi
else
  echo "GUEST MOUNT FAILED"
fi
sync
echo "GUEST FINISHED"
poweroff -f
`;
