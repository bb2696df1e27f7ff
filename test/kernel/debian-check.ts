/**
 * The check a freshly installed Debian runs on its first boot, from a systemd unit wanted by
 * multi-user.target: one `CHECK ok|fail NAME detail` line per claim on the console, then
 * `systemctl poweroff`. It waits for the boot to settle first (the unit is Type=simple, so it
 * does not hold the boot up itself).
 */
export const DEBIAN_CHECK = `#!/bin/sh
exec >/dev/console 2>&1
check() {
  n=$1; shift
  if out=$("$@" 2>&1); then echo "CHECK ok $n"; else echo "CHECK fail $n $(echo "$out" | tail -n 5 | tr '\\n' ' ')"; fi
}
echo "VALUE state $(timeout 600 systemctl is-system-running --wait)"
echo "VALUE failed-units $(systemctl --failed --plain --no-legend | awk '{print $1}' | tr '\\n' ' ')"
echo "VALUE init $(readlink /proc/1/exe)"
echo "VALUE root $(awk '$2 == "/" {print $3, $4}' /proc/mounts | tail -n 1)"
check dpkg-audit sh -c 'test -z "$(dpkg --audit)"'
check apt-install-local-deb sh -c 'apt-get install -y /root/virtfs-hello.deb && virtfs-hello'
check useradd useradd -m -s /bin/sh alice
check su-to-user sh -c 'test "$(su alice -c "id -un; touch ~/made-by-alice" | tail -n 1)" = alice && test "$(stat -c %U /home/alice/made-by-alice)" = alice'
# A file capability set in the guest is kept (in user.virtfs.security.capability on the host, inert
# there) and honoured by the guest's kernel: alice running the copy holds cap_net_raw.
check file-capability sh -c 'cp "$(command -v capsh)" /usr/local/bin/capsh-raw && setcap cap_net_raw+ep /usr/local/bin/capsh-raw && getcap /usr/local/bin/capsh-raw | grep -q cap_net_raw && cur=$(su alice -c "/usr/local/bin/capsh-raw --print" | grep "^Current:") && echo "$cur" && test "$cur" = "Current: cap_net_raw=ep"'
check passwd-setuid-root sh -c 'test "$(stat -c %a:%U:%G /usr/bin/passwd)" = 4755:root:root'
mkdir -p /run/rootview
mount --bind / /run/rootview
for n in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0 console:5:1 ptmx:5:2; do
  name=\${n%%:*}; want="character special file \${n#*:}"
  got=$(stat -c '%F %t:%T' /run/rootview/dev/$name)  # major:minor in hex, the same as decimal below 10
  check dev-$name test "$got" = "$want"
done
umount /run/rootview
echo "VALUE finished yes"
systemctl poweroff
`;

export const DEBIAN_CHECK_UNIT = `[Unit]
Description=virtfs first-boot check

[Service]
Type=simple
ExecStart=/usr/local/sbin/virtfs-check
StandardOutput=tty
TTYPath=/dev/console

[Install]
WantedBy=multi-user.target
`;
