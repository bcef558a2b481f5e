package io.loraspark.train.model;

import static io.loraspark.train.model.Kernels.buffer;
import static io.loraspark.train.model.Kernels.offset;
import static io.loraspark.train.model.VectorMath.CHUNK;
import static io.loraspark.train.model.VectorMath.L;
import static io.loraspark.train.model.VectorMath.LE;
import static io.loraspark.train.model.VectorMath.S;
import static io.loraspark.train.model.VectorMath.bound;
import static io.loraspark.train.model.VectorMath.exp;
import static io.loraspark.train.model.VectorMath.load;

import java.nio.ByteBuffer;
import jdk.incubator.vector.FloatVector;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * {@link SiluKernels} fused on the Vector API: the forward in chunks that stay in cache between its
 * two passes, the backward in one pass (see {@link VectorMath}).
 */
final class VectorSilu implements SiluKernels {
  /**
   * {@code sig = σ(gate)}, {@code act = gate · sig · up}, in chunks that stay in cache between the
   * two passes. (One loop doing both did not compile to SIMD: with the inlined exp, C2 stopped
   * inlining the loads and allocated a vector object per load.)
   */
  @Override
  public void forward(INDArray gate, INDArray up, INDArray sig, INDArray act) {
    assert Kernels.vector(gate, up, sig, act) : Kernels.UNFIT;
    ByteBuffer gb = buffer(gate);
    ByteBuffer ub = buffer(up);
    ByteBuffer sb = buffer(sig);
    ByteBuffer ab = buffer(act);
    int gOff = offset(gate);
    int uOff = offset(up);
    int sOff = offset(sig);
    int aOff = offset(act);
    VectorMath.elementwise(
        Math.toIntExact(gate.length()),
        (start, end) -> {
          for (int c = start; c < end; c += CHUNK) {
            int len = Math.min(CHUNK, end - c);
            sigmoidRow(gb, gOff + c * 4, sb, sOff + c * 4, len);
            productRow(gb, gOff + c * 4, sb, sOff + c * 4, ub, uOff + c * 4, ab, aOff + c * 4, len);
          }
        });
  }

  /**
   * {@code dUp = dAct · gate · sig}, {@code dGate = dAct · up · sig · (1 + gate · (1 − sig))}, in
   * one pass, one {@link VectorMath#CHUNK} per call of the row kernel: called once per thread over
   * its whole range, the kernel was invoked too seldom for C2 to compile it in {@code
   * KernelWarmup}, so each call of the first real steps ran its loop interpreted or in C1 code
   * until the on-stack replacement, boxing every vector (~150 MB of garbage in the first steps of
   * the 576 × 4 benchmark model, which made G1 grow the heap).
   */
  @Override
  public void backward(
      INDArray gate, INDArray up, INDArray sig, INDArray dAct, INDArray dGate, INDArray dUp) {
    assert Kernels.vector(gate, up, sig, dAct, dGate, dUp) : Kernels.UNFIT;
    ByteBuffer gb = buffer(gate);
    ByteBuffer ub = buffer(up);
    ByteBuffer sb = buffer(sig);
    ByteBuffer db = buffer(dAct);
    ByteBuffer dgb = buffer(dGate);
    ByteBuffer dub = buffer(dUp);
    int gOff = offset(gate);
    int uOff = offset(up);
    int sOff = offset(sig);
    int dOff = offset(dAct);
    int dgOff = offset(dGate);
    int duOff = offset(dUp);
    VectorMath.elementwise(
        Math.toIntExact(gate.length()),
        (start, end) -> {
          for (int c = start; c < end; c += CHUNK) {
            int o = c * 4;
            backwardRow(
                gb,
                gOff + o,
                ub,
                uOff + o,
                sb,
                sOff + o,
                db,
                dOff + o,
                dgb,
                dgOff + o,
                dub,
                duOff + o,
                Math.min(CHUNK, end - c));
          }
        });
  }

  /** sig ← 1 / (1 + exp(−gate)) over n floats. */
  private static void sigmoidRow(ByteBuffer gate, int gOff, ByteBuffer sig, int sOff, int n) {
    int vb = bound(n);
    FloatVector one = FloatVector.broadcast(S, 1f);
    int i = 0;
    for (; i < vb; i += L) {
      one.div(exp(load(gate, gOff + i * 4).neg()).add(1f)).intoByteBuffer(sig, sOff + i * 4, LE);
    }
    for (; i < n; i++) {
      sig.putFloat(sOff + i * 4, 1f / (exp(-gate.getFloat(gOff + i * 4)) + 1f));
    }
  }

  /** out ← a · b · c over n floats. */
  private static void productRow(
      ByteBuffer a,
      int ao,
      ByteBuffer b,
      int bo,
      ByteBuffer c,
      int co,
      ByteBuffer out,
      int oo,
      int n) {
    int vb = bound(n);
    int i = 0;
    for (; i < vb; i += L) {
      load(a, ao + i * 4)
          .mul(load(b, bo + i * 4))
          .mul(load(c, co + i * 4))
          .intoByteBuffer(out, oo + i * 4, LE);
    }
    for (; i < n; i++) {
      out.putFloat(
          oo + i * 4, a.getFloat(ao + i * 4) * b.getFloat(bo + i * 4) * c.getFloat(co + i * 4));
    }
  }

  /** {@link #backward} over n floats. */
  private static void backwardRow(
      ByteBuffer gate,
      int gOff,
      ByteBuffer up,
      int uOff,
      ByteBuffer sig,
      int sOff,
      ByteBuffer dAct,
      int dOff,
      ByteBuffer dGate,
      int dgOff,
      ByteBuffer dUp,
      int duOff,
      int n) {
    int vb = bound(n);
    int i = 0;
    for (; i < vb; i += L) {
      FloatVector g = load(gate, gOff + i * 4);
      FloatVector sg = load(sig, sOff + i * 4);
      FloatVector da = load(dAct, dOff + i * 4);
      da.mul(g).mul(sg).intoByteBuffer(dUp, duOff + i * 4, LE);
      FloatVector oneMinus = sg.neg().add(1f);
      FloatVector d = g.mul(oneMinus).add(1f).mul(sg).mul(load(up, uOff + i * 4)).mul(da);
      d.intoByteBuffer(dGate, dgOff + i * 4, LE);
    }
    for (; i < n; i++) {
      float g = gate.getFloat(gOff + i * 4);
      float sg = sig.getFloat(sOff + i * 4);
      float da = dAct.getFloat(dOff + i * 4);
      dUp.putFloat(duOff + i * 4, da * g * sg);
      dGate.putFloat(dgOff + i * 4, (g * (-sg + 1f) + 1f) * sg * up.getFloat(uOff + i * 4) * da);
    }
  }
}
