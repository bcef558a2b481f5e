package io.loraspark.train.lora;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * Counts the chains {@link AdapterChain#of} reads and verifies while some code runs, through its
 * package-private hook, for tests of the commands that must read an adapter's chain once.
 */
public final class ChainReads {
  private ChainReads() {}

  /** How many chains {@code run} read (each {@link AdapterChain#of} call, any directory). */
  public static int during(Runnable run) {
    AtomicInteger reads = new AtomicInteger();
    AdapterChain.onRead = dir -> reads.incrementAndGet();
    try {
      run.run();
    } finally {
      AdapterChain.onRead = null;
    }
    return reads.get();
  }
}
