package io.loraspark.train.lora;

import io.loraspark.train.model.Kernels;
import java.nio.ByteBuffer;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Writes a LoRA branch's inverted-dropout mask: each element is 0 with probability p, else 1 / (1 −
 * p), drawn in row-major order from one generator, so both forms give the same mask. Float32
 * row-major masks are written in place ({@link Direct}, no per-step double[] of rows·cols); others
 * through ND4J ({@link Nd4jMask}). Chosen by {@link #of}.
 */
interface DropoutMask {
  /**
   * Fills {@code mask}, [rows, cols], from {@code rnd}.
   *
   * @param p the dropout probability, in [0, 1)
   */
  void fill(INDArray mask, SplittableRandom rnd, double p);

  /** The in-place form when {@link Kernels#vector} accepts {@code mask}, else the ND4J one. */
  static DropoutMask of(INDArray mask) {
    return Kernels.vector(mask) ? Direct.INSTANCE : Nd4jMask.INSTANCE;
  }

  /** Floats written straight into the mask's buffer. */
  final class Direct implements DropoutMask {
    static final Direct INSTANCE = new Direct();

    @Override
    public void fill(INDArray mask, SplittableRandom rnd, double p) {
      ByteBuffer b = Kernels.buffer(mask);
      int off = Kernels.offset(mask);
      float keep = (float) (1.0 / (1.0 - p));
      for (int i = 0; i < mask.length(); i++) {
        b.putFloat(off + 4 * i, rnd.nextDouble() < p ? 0f : keep);
      }
    }
  }

  /** Doubles drawn into an array and assigned in the mask's dtype (any dtype and layout). */
  final class Nd4jMask implements DropoutMask {
    static final Nd4jMask INSTANCE = new Nd4jMask();

    @Override
    public void fill(INDArray mask, SplittableRandom rnd, double p) {
      double keep = 1.0 / (1.0 - p);
      double[] m = new double[Math.toIntExact(mask.length())];
      for (int i = 0; i < m.length; i++) {
        m[i] = rnd.nextDouble() < p ? 0.0 : keep;
      }
      mask.assign(Nd4j.createFromArray(m).reshape(mask.shape()));
    }
  }
}
