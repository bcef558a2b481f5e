package io.loraspark.train.model.precision;

import io.loraspark.train.model.Kernels;
import java.util.function.Supplier;
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
    call(
        () -> {
          body.run();
          return null;
        });
  }

  /**
   * {@code body}'s value, computed with oneDNN's thread count. Primitives must be made this way
   * too: oneDNN sizes a primitive's work split by the thread count at its creation, and one made on
   * ND4J's single thread but run on two returned zeros (an f32 matmul of 2,048-long dot products
   * split over K, the adapters' dB = dyᵀ·u, in a training step).
   */
  static <T> T call(Supplier<T> body) {
    var ops = NativeOpsHolder.getInstance().getDeviceNativeOps();
    ops.setOmpNumThreads(Kernels.threads());
    try {
      return body.get();
    } finally {
      ops.setOmpNumThreads(Math.max(1, Nd4j.getEnvironment().maxThreads()));
    }
  }
}
