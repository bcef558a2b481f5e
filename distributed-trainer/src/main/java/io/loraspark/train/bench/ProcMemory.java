package io.loraspark.train.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Resident memory of this process from {@code /proc/self/status} (Linux): heap, off-heap ND4J
 * buffers and native libraries together, which is what a Spark executor's memory limit sees.
 */
final class ProcMemory {
  private static final Path STATUS = Path.of("/proc/self/status");

  private ProcMemory() {}

  /** Peak resident set size (VmHWM) in bytes, or -1 where /proc is not available. */
  static long peakResidentBytes() {
    return field("VmHWM:");
  }

  /** Current resident set size (VmRSS) in bytes, or -1 where /proc is not available. */
  static long residentBytes() {
    return field("VmRSS:");
  }

  /**
   * VmRSS once garbage is gone: after a full GC, ND4J frees the off-heap buffers of collected
   * arrays on its own deallocator threads, some time later; this polls every 100 ms and returns the
   * lowest reading once half a second has passed without it dropping by 1 MiB (at most 3 s).
   */
  static long settledResidentBytes() {
    System.gc();
    long lowest = residentBytes();
    int quiet = 0;
    for (int i = 0; i < 30 && quiet < 5; i++) {
      try {
        Thread.sleep(100);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
      long now = residentBytes();
      if (now < lowest - (1L << 20)) {
        lowest = now;
        quiet = 0;
      } else {
        lowest = Math.min(lowest, now);
        quiet++;
      }
    }
    return lowest;
  }

  private static long field(String key) {
    if (!Files.isReadable(STATUS)) {
      return -1;
    }
    try {
      for (String line : Files.readAllLines(STATUS)) {
        if (line.startsWith(key)) {
          String[] parts = line.substring(key.length()).trim().split("\\s+");
          return Long.parseLong(parts[0]) * 1024; // the kernel reports kB
        }
      }
      return -1;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + STATUS, e);
    }
  }
}
