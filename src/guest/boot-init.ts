import { GUEST_MODULES } from './guest-kernel.js';

/**
 * /init of the boot initramfs (busybox sh). It brings up the one network forward, mounts virtfs
 * from 10.0.2.100:564 as the new root, then either hands the machine to the root's /sbin/init or
 * runs a command chrooted there, reports its exit status on the second serial port (the host
 * cannot see the guest's processes otherwise) and powers off; a boot that cannot go on reports
 * why there too. /boot.conf, from the per-boot
 * archive, sets MOUNT_OPTS and, for a command, its arguments (`set -- ...`).
 */
export const BOOT_INIT = `#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
say() { echo "virtfs-boot: $*" >/dev/console; }
halt_now() { sync; poweroff -f; sleep 10; }
# A boot that cannot go on says why on the console and tells the host on the status port.
fail() { say "$*"; echo "fail $*" >/dev/ttyS1; halt_now; }
RUN_COMMAND=no
. /boot.conf
for m in ${GUEST_MODULES.join(' ')}; do
  [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko 2>/dev/null
done
ip link set lo up
ip link set eth0 up || fail "no network device (virtio-net) in this guest"
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
mkdir -p /newroot
if ! mount -t 9p -o "trans=tcp,port=564,version=9p2000.L,$MOUNT_OPTS" 10.0.2.100 /newroot; then
  fail "cannot mount virtfs from the host as the root filesystem"
fi
if [ "$RUN_COMMAND" = yes ]; then
  for d in proc sys dev; do [ -d /newroot/$d ] || mkdir /newroot/$d; done
  mount -t proc proc /newroot/proc
  mount -t sysfs sys /newroot/sys
  mount -t devtmpfs dev /newroot/dev
  mkdir -p /newroot/dev/pts /newroot/dev/shm
  mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /newroot/dev/pts
  mount -t tmpfs tmpfs /newroot/dev/shm
  [ -d /newroot/run ] && mount -t tmpfs -o mode=755 tmpfs /newroot/run
  [ -d /newroot/tmp ] && mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM="\${TERM:-linux}" LANG=C.UTF-8 \\
    chroot /newroot "$@" </dev/console >/dev/console 2>&1
  status=$?
  echo "exit $status" >/dev/ttyS1
  for d in tmp run dev/shm dev/pts dev sys proc; do umount /newroot/$d 2>/dev/null; done
  sync
  umount /newroot || umount -l /newroot
  halt_now
fi
if [ ! -x /newroot/sbin/init ] && [ ! -L /newroot/sbin/init ]; then
  fail "the root filesystem has no /sbin/init"
fi
mount --move /dev /newroot/dev
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
exec switch_root /newroot /sbin/init
`;
