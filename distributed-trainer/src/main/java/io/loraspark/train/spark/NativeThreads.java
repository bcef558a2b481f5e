package io.loraspark.train.spark;

import io.loraspark.train.model.Kernels;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.nativeblas.NativeOpsHolder;

/**
 * Sets ND4J's OpenMP and OpenBLAS thread counts for this JVM. A Spark task should run as many GEMM
 * threads as it has cores ({@code spark.task.cpus}): two tasks each running two BLAS threads on two
 * cores measured 2.2x slower than one thread each (oversubscribed threads spin). ND4J's own ops
 * (the elementwise work the fused kernels do not cover) stay on one OpenMP thread: with both pools
 * at two threads on two cores, OpenMP threads spinning between ops starved OpenBLAS and a training
 * step ran 3.9x slower ({@code lora-pipeline bench --op-threads 2}: 179 against 700 tokens/s). The
 * fused Java kernels ({@link Kernels#threads}) take the GEMM count: they run between GEMMs, and
 * their helper threads park instead of spinning.
 */
public final class NativeThreads {
  private static int currentOps = -1;
  private static int currentBlas = -1;

  private NativeThreads() {}

  /** GEMMs on {@code threads} OpenBLAS threads, ND4J ops on one thread. */
  public static void configure(int threads) {
    configure(1, threads);
  }

  /** Sets both pools, if they differ from the last ones set. */
  public static synchronized void configure(int opThreads, int blasThreads) {
    if (opThreads < 1 || blasThreads < 1) {
      return;
    }
    if (opThreads != currentOps) {
      Nd4j.getEnvironment().setMaxThreads(opThreads);
      Nd4j.getEnvironment().setMaxMasterThreads(opThreads);
      NativeOpsHolder.getInstance().getDeviceNativeOps().setOmpNumThreads(opThreads);
      currentOps = opThreads;
    }
    if (blasThreads != currentBlas) {
      Nd4j.factory().blas().setMaxThreads(blasThreads);
      Kernels.threads(blasThreads);
      currentBlas = blasThreads;
    }
  }
}
