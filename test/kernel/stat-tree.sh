# Runs inside the guest in the mounted export: reports how the guest sees every object under
# m, copy and untar (as made by models.sh), one `VALUE tree:PATH ...` line each, for the host to
# compare between servers. check/expect_eq come from the guest's init.
find m copy untar | sort | while read -r f; do
  line="$(stat -c '%f %u %g %t,%T %s %h' "$f")"
  [ -L "$f" ] && line="$line -> $(readlink "$f")"
  echo "VALUE tree:$f $line"
  echo "VALUE acl:$f $(getfacl -c -p "$f" 2>/dev/null | tr '\n' ' ')"
done
echo "VALUE xattrs:m/dir $(getfattr -d -m - m/dir 2>/dev/null | grep -v '^#' | tr '\n' ' ')"
echo "VALUE xattrs:m/file $(getfattr -d -m - m/file 2>/dev/null | grep -v '^#' | tr '\n' ' ')"
