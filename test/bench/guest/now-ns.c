/* now-ns: print CLOCK_MONOTONIC in nanoseconds. The in-guest bench times its steps with it:
 * busybox's date has no %N, and /proc/uptime counts in 10 ms ticks. */
#include <stdio.h>
#include <time.h>

int main(void) {
  struct timespec t;
  if (clock_gettime(CLOCK_MONOTONIC, &t) != 0) return perror("clock_gettime"), 1;
  printf("%lld\n", (long long)t.tv_sec * 1000000000LL + t.tv_nsec);
  return 0;
}
