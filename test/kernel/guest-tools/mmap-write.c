/* mmap-write FILE SIZE: create FILE of SIZE bytes through a shared writable mapping, byte i
 * being i % 251, and msync it. Runs inside the test guest (busybox has no way to do this). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: mmap-write FILE SIZE\n");
    return 2;
  }
  size_t size = strtoul(argv[2], NULL, 0);
  int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return perror("open"), 1;
  if (ftruncate(fd, (off_t)size) != 0) return perror("ftruncate"), 1;
  unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return perror("mmap"), 1;
  for (size_t i = 0; i < size; i++) p[i] = (unsigned char)(i % 251);
  if (msync(p, size, MS_SYNC) != 0) return perror("msync"), 1;
  if (munmap(p, size) != 0) return perror("munmap"), 1;
  if (close(fd) != 0) return perror("close"), 1;
  return 0;
}
