package io.loraspark.train.model;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The decode kernels' threads: a decode step makes a few hundred small parallel calls (one per
 * projection), each a fraction of a millisecond, so waking a parked pool thread per call (tens of
 * microseconds, as {@link KernelThreads} does between training GEMMs) cost a third of a step on 2
 * cores. Here the helpers spin ({@link Thread#onSpinWait}) for the next call and park only after
 * {@link #IDLE_NANOS} without one, as OpenMP runtimes do; a call costs about a microsecond.
 *
 * <p>One caller at a time: a call made while another thread holds the pool runs on the caller alone
 * (same results: every part is the same arithmetic wherever it runs). The count follows {@link
 * Kernels#threads}; the helpers are daemon threads.
 */
final class SpinPool {
  private static final long IDLE_NANOS = 2_000_000;
  private static volatile SpinPool shared;

  private final int threads;
  private final Worker[] workers;
  private final ReentrantLock owner = new ReentrantLock();
  private final AtomicInteger pending = new AtomicInteger();
  private volatile long generation;
  private volatile DecodeKernels.RowRange task;
  private volatile int rows;
  private volatile Throwable failure;

  private SpinPool(int threads) {
    this.threads = threads;
    this.workers = new Worker[threads - 1];
    for (int i = 0; i < workers.length; i++) {
      workers[i] = new Worker(i + 1);
      workers[i].start();
    }
  }

  /** The pool for the current {@link Kernels#threads} count (made or remade on change). */
  static SpinPool get() {
    SpinPool p = shared;
    int n = KernelThreads.threads();
    if (p == null || p.threads != n) {
      synchronized (SpinPool.class) {
        p = shared;
        if (p == null || p.threads != n) {
          if (p != null) {
            p.shutdown();
          }
          p = new SpinPool(n);
          shared = p;
        }
      }
    }
    return p;
  }

  /** Runs body over [0, rows) in {@code threads} equal parts; returns when all are done. */
  void run(int rows, DecodeKernels.RowRange body) {
    if (threads == 1 || rows < threads || !owner.tryLock()) {
      body.run(0, rows);
      return;
    }
    try {
      this.task = body;
      this.rows = rows;
      this.failure = null;
      pending.set(workers.length);
      generation++; // publishes task and rows to the spinning helpers
      for (Worker w : workers) {
        if (w.parked) {
          LockSupport.unpark(w);
        }
      }
      body.run(0, rows / threads);
      while (pending.get() > 0) {
        Thread.onSpinWait();
      }
      Throwable f = failure;
      if (f instanceof RuntimeException re) {
        throw re;
      }
      if (f instanceof Error e) {
        throw e;
      }
    } finally {
      task = null;
      owner.unlock();
    }
  }

  private void shutdown() {
    for (Worker w : workers) {
      w.stop = true;
      LockSupport.unpark(w);
    }
  }

  private final class Worker extends Thread {
    private final int part;
    volatile boolean parked;
    volatile boolean stop;

    Worker(int part) {
      super("lora-decode-" + part);
      this.part = part;
      setDaemon(true);
    }

    @Override
    public void run() {
      long seen = 0; // the pool's generation when this worker was made
      while (!stop) {
        long idleSince = System.nanoTime();
        while (generation == seen && !stop) {
          if (System.nanoTime() - idleSince < IDLE_NANOS) {
            Thread.onSpinWait();
            continue;
          }
          parked = true;
          if (generation == seen && !stop) { // re-read after announcing: no lost wake-up
            LockSupport.park(this);
          }
          parked = false;
        }
        if (stop) {
          return;
        }
        seen = generation;
        int n = rows;
        try {
          task.run((int) ((long) n * part / threads), (int) ((long) n * (part + 1) / threads));
        } catch (Throwable t) {
          failure = t;
        } finally {
          pending.decrementAndGet();
        }
      }
    }
  }
}
