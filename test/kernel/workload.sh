# Runs inside the guest, in the mounted export (cwd). `check NAME CMD...` and `expect_eq NAME ACTUAL
# EXPECTED` come from the guest's init; `value NAME V` reports a value for the host to compare.
value() { echo "VALUE $1 $2"; }

value mount-line "$(grep ' /mnt ' /proc/mounts | tr ' ' '_')"

# create, read, write, append, truncate
echo hello > f1
check create test -f f1
expect_eq read "$(cat f1)" hello
echo world >> f1
expect_eq append "$(cat f1 | tr '\n' ' ')" "hello world "
printf 'abcdef' > f2
printf 'XY' | dd of=f2 bs=1 seek=2 conv=notrunc 2>/dev/null
expect_eq write-at-offset "$(cat f2)" abXYef
truncate -s 3 f2
expect_eq truncate "$(cat f2)" abX
: > f1
expect_eq truncate-on-open "$(stat -c %s f1)" 0

# directories
mkdir -p d1/d2
check mkdir test -d d1/d2
rmdir d1/d2
check rmdir test ! -e d1/d2
echo in > d1/inner
check rmdir-nonempty-refused sh -c '! rmdir /mnt/d1 2>/dev/null'

# rename: across directories, over an existing file, and a directory with an open file inside
mkdir ra rb
echo one > ra/x
echo two > rb/y
mv ra/x rb/y
expect_eq rename-over-existing "$(cat rb/y)" one
check rename-source-gone test ! -e ra/x
exec 4< d1/inner
mv d1 d1moved
expect_eq open-fid-survives-dir-rename "$(cat <&4)" in
exec 4<&-
expect_eq renamed-dir-content "$(cat d1moved/inner)" in

# hard links and symlinks
echo L > h1
ln h1 h2
expect_eq hardlink-count "$(stat -c %h h1)" 2
expect_eq hardlink-same-inode "$(stat -c %i h2)" "$(stat -c %i h1)"
ln -s h1 s1
expect_eq symlink-readlink "$(readlink s1)" h1
expect_eq symlink-follow "$(cat s1)" L
ln -s /etc/passwd escape
check symlink-to-outside-resolves-in-guest test "$(readlink escape)" = /etc/passwd

# chmod, chown, touch with given times
chmod 0640 h1
expect_eq chmod "$(stat -c %a h1)" 640
chown 1234:5678 h1
expect_eq chown "$(stat -c %u:%g h1)" 1234:5678
touch -d '2001-02-03 04:05:06' h1
expect_eq touch-mtime "$(stat -c %Y h1)" 981173106

# a directory of 5,000 entries (made on the host) listed completely
expect_eq big-dir-count "$(ls big | wc -l)" 5000
value big-dir-names-md5 "$(ls big | sort | md5sum | cut -d' ' -f1)"

# open, unlink, then read and write through the open file
echo secret > u1
exec 3<> u1
rm u1
check unlinked-gone test ! -e u1
expect_eq open-unlinked-read "$(cat <&3)" secret
exec 3>&-

# fifo
mkfifo p1
expect_eq fifo-type "$(stat -c %F p1)" fifo

# xattrs
setfattr -n user.color -v blue h2
expect_eq xattr-get "$(getfattr --only-values -n user.color h2)" blue
check xattr-list sh -c 'getfattr -d /mnt/h2 | grep -q "user.color"'
setfattr -x user.color h2
check xattr-remove sh -c '! getfattr -n user.color /mnt/h2 2>/dev/null'

# df and sync
check df-reports-blocks test "$(stat -f -c %b .)" -gt 0
check sync sync

# several MiB: one file written by the host, one by the guest; checksums compared on the host
value host-file-md5 "$(md5sum hostdata | cut -d' ' -f1)"
dd if=/dev/urandom of=guestdata bs=65536 count=48 2>/dev/null
value guest-file-md5 "$(md5sum guestdata | cut -d' ' -f1)"
expect_eq guest-file-size "$(stat -c %s guestdata)" 3145728

# a shared writable mapping: refused without a page cache (cache=none), written back to the
# server with one (the host checks the content)
if mmap-write mapped 1048576 2>/tmp/mmap.err; then value mmap-write ok; else value mmap-write "failed: $(cat /tmp/mmap.err)"; fi

# a program stored in the export runs from it (exec maps the file; busybox picks the applet
# from its own name, so the copy keeps it)
cp /bin/busybox busybox
expect_eq exec-from-export "$(./busybox echo ran)" ran
