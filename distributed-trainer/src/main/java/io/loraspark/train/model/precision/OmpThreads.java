package io.loraspark.train.model.precision;

import io.loraspark.train.model.Kernels;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.nativeblas.NativeOpsHolder;

/**
 * oneDNN's thread count. Its OpenMP runtime is ND4J's libgomp, whose thread count is a per-thread
 * setting of the calling thread; ND4J's own ops keep theirs (one, see {@code NativeThreads}). So a
 * oneDNN call runs with the task's GEMM thread count ({@link Kernels#threads}, the count OpenBLAS
 * and the Java kernels get) and puts ND4J's count back afterwards: the three pools take turns on
 * the task's cores instead of oversubscribing them.
 */
final class OmpThreads {
  private OmpThreads() {}

  static void run(Runnable body) {
    var ops = NativeOpsHolder.getInstance().getDeviceNativeOps();
    ops.setOmpNumThreads(Kernels.threads());
    try {
      body.run();
    } finally {
      ops.setOmpNumThreads(Math.max(1, Nd4j.getEnvironment().maxThreads()));
    }
  }
}
