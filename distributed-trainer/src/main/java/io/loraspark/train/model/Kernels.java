package io.loraspark.train.model;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Locale;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Decides where the fused float32 kernels ({@link VectorMath} and its families) may run instead of
 * the ND4J ops kept as their reference: {@link ModelKernels} asks once per workspace, the optimizer
 * once per parameter.
 *
 * <p>Why two paths: ND4J runs an elementwise step as one native op per arithmetic operation, each a
 * full pass over memory, with a scalar libm {@code exp}; softmax over the vocabulary, attention
 * softmax, SiLU and RMSNorm were a third of a training step on the benchmark model. The JDK Vector
 * API fuses each into one or two passes with a vectorised exp. It is an incubator module in Java
 * 17, so it is used only when the JVM was started with {@code --add-modules jdk.incubator.vector}
 * (the launcher, the build's tests and {@code conf/spark-defaults.conf} pass it); without it, and
 * for float64 models and non-contiguous arrays, the ND4J path runs and gives the same results to
 * float rounding. {@code -Dlora.kernels=nd4j} forces the ND4J path (to compare or to rule the
 * kernels out).
 */
public final class Kernels {
  /** Whether the Vector API kernels may run in this JVM. */
  public static final boolean VECTOR = detect();

  private Kernels() {}

  private static boolean detect() {
    String choice = System.getProperty("lora.kernels", "auto").toLowerCase(Locale.ROOT);
    return !choice.equals("nd4j")
        && ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();
  }

  /**
   * Runs the vector kernels' rows on {@code n} threads from now on (per JVM, like OpenBLAS's
   * count): they run between GEMMs, on the cores the GEMMs use. Same results for any count.
   */
  public static void threads(int n) {
    KernelThreads.set(n);
  }

  /** The threads the vector kernels' rows run on. */
  public static int threads() {
    return KernelThreads.threads();
  }

  /** Why a fused kernel refused an array (checked by assertions, as the choice is made once). */
  static final String UNFIT =
      "the fused kernels take float32 row-major arrays under 2 GiB; others take the ND4J kernels";

  /**
   * Whether the fused kernels run for arrays of {@code dtype} that are row-major blocks (as a
   * workspace's are): the module is present and the dtype is float32.
   */
  public static boolean fused(DataType dtype) {
    return VECTOR && dtype == DataType.FLOAT;
  }

  /** The kernels this JVM runs for float32 models: {@code vector} or {@code nd4j}. */
  static String name() {
    return VECTOR ? "vector" : "nd4j";
  }

  /**
   * Whether the fused kernels apply to these arrays: the module is present, and each array is
   * float32 with row-major strides over one block (a view of a row range is), in a buffer small
   * enough for {@link ByteBuffer} addressing.
   */
  public static boolean vector(INDArray... arrays) {
    if (!VECTOR) {
      return false;
    }
    for (INDArray a : arrays) {
      if (a.dataType() != DataType.FLOAT
          || !contiguous(a)
          || (a.offset() + a.length()) * 4 > Integer.MAX_VALUE) {
        return false;
      }
    }
    return true;
  }

  private static boolean contiguous(INDArray a) {
    long expected = 1;
    long[] shape = a.shape();
    long[] stride = a.stride();
    for (int d = shape.length - 1; d >= 0; d--) {
      if (shape[d] != 1 && stride[d] != expected) {
        return false;
      }
      expected *= shape[d];
    }
    return true;
  }

  /** The whole off-heap buffer under {@code a} (views included), little-endian. */
  public static ByteBuffer buffer(INDArray a) {
    return a.data().asNio().order(ByteOrder.LITTLE_ENDIAN);
  }

  /** a ← 0, in place: one vector pass for a float32 array, an ND4J op otherwise. */
  public static void zero(INDArray a) {
    if (vector(a)) {
      VectorMath.fill(buffer(a), offset(a), Math.toIntExact(a.length()), 0f);
    } else {
      a.assign(0);
    }
  }

  /** Byte offset of {@code a}'s first element in {@link #buffer}. */
  public static int offset(INDArray a) {
    return Math.toIntExact(a.offset() * 4);
  }
}
