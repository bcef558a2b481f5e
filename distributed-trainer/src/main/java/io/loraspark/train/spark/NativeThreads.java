package io.loraspark.train.spark;

import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.nativeblas.NativeOpsHolder;

/**
 * Sets ND4J's OpenMP and OpenBLAS thread counts for this JVM. A Spark task should use as many
 * threads as it has cores ({@code spark.task.cpus}): two tasks each running two BLAS threads on two
 * cores measured 2.2x slower than one thread each (oversubscribed OpenMP threads spin).
 */
public final class NativeThreads {
  private static int current = -1;

  private NativeThreads() {}

  /** Sets the thread count if it differs from the last one set. */
  public static synchronized void configure(int threads) {
    if (threads < 1 || threads == current) {
      return;
    }
    Nd4j.getEnvironment().setMaxThreads(threads);
    Nd4j.getEnvironment().setMaxMasterThreads(threads);
    NativeOpsHolder.getInstance().getDeviceNativeOps().setOmpNumThreads(threads);
    Nd4j.factory().blas().setMaxThreads(threads);
    current = threads;
  }
}
