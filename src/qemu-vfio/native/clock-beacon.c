/*
 * clock-beacon: prints the guest's wall clock on stdout as "@@clock SECONDS.MICROS" every INTERVAL
 * milliseconds (default 500), forever. The host reads the lines off the serial console and keeps the
 * largest (guest clock - host arrival time) as its estimate of the guest clock's offset: QEMU stamps QMP
 * events with g_get_real_time() of the machine it runs on, the nested VM, so the host needs that offset
 * to stamp its own commands on the same clock (src/qemu-vfio/nested.ts).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

int main(int argc, char **argv) {
  long interval = argc > 1 ? strtol(argv[1], NULL, 10) : 500;
  if (interval <= 0) interval = 500;
  struct timespec pause = {interval / 1000, (interval % 1000) * 1000000L};
  for (;;) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    printf("@@clock %ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);
    fflush(stdout);
    nanosleep(&pause, NULL);
  }
}
