package io.loraspark.train.model;

import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;

/**
 * Splits a fused kernel's independent rows over the task's cores. The kernels run between GEMMs,
 * while OpenBLAS's threads wait, so a task given two cores for its GEMMs would otherwise leave one
 * idle for a fifth of the step. Each row is computed by exactly the arithmetic of the
 * single-threaded loop, so the results are the same bits for any thread count.
 *
 * <p>The count is per JVM, like OpenBLAS's ({@code NativeThreads} sets both from the task's cores).
 * The helpers are daemon threads that park between kernels; they never submit work themselves, so
 * tasks sharing them cannot deadlock.
 */
final class KernelThreads {
  /** A part of a kernel: rows [from, to). */
  interface Range {
    void run(int from, int to);
  }

  // below this many floats per call, waking a helper costs more than it saves
  private static final long MIN_FLOATS = 1 << 15;

  private static volatile int threads = 1;
  private static ExecutorService helpers;

  private KernelThreads() {}

  /** Uses {@code n} threads (the caller and n − 1 helpers) for kernels from now on. */
  static synchronized void set(int n) {
    if (n < 1 || n == threads) {
      return;
    }
    if (helpers != null) {
      helpers.shutdown();
      helpers = null;
    }
    if (n > 1) {
      helpers =
          Executors.newFixedThreadPool(
              n - 1,
              r -> {
                Thread t = new Thread(r, "lora-kernels");
                t.setDaemon(true);
                return t;
              });
    }
    threads = n;
  }

  static int threads() {
    return threads;
  }

  /**
   * Runs {@code body} over rows [0, rows), in equal parts on up to {@link #threads} threads when
   * the call touches at least {@link #MIN_FLOATS} floats; returns when every part is done.
   */
  static void rows(int rows, long floatsPerRow, Range body) {
    int n;
    ExecutorService pool;
    synchronized (KernelThreads.class) {
      n = threads;
      pool = helpers;
    }
    int parts = Math.min(n, rows);
    if (parts <= 1 || pool == null || (long) rows * floatsPerRow < MIN_FLOATS) {
      body.run(0, rows);
      return;
    }
    Future<?>[] others = new Future<?>[parts - 1];
    for (int p = 1; p < parts; p++) {
      int from = (int) ((long) rows * p / parts);
      int to = (int) ((long) rows * (p + 1) / parts);
      try {
        others[p - 1] = pool.submit(() -> body.run(from, to));
      } catch (RejectedExecutionException e) {
        body.run(from, to); // another task changed the count and shut this pool: run it here
      }
    }
    body.run(0, rows / parts);
    for (Future<?> f : others) {
      if (f != null) {
        join(f);
      }
    }
  }

  private static void join(Future<?> f) {
    boolean interrupted = false;
    try {
      while (true) {
        try {
          f.get();
          return;
        } catch (InterruptedException e) {
          interrupted = true; // finish the kernel: its buffers are read right after
        }
      }
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof RuntimeException re) {
        throw re;
      }
      if (cause instanceof Error err) {
        throw err;
      }
      throw new IllegalStateException(cause);
    } finally {
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
