package io.loraspark.train.optim;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * {@link OptimizerKernels} in ND4J ops, any dtype and layout: the reference, the AdamW math one op
 * per line.
 */
final class Nd4jOptim implements OptimizerKernels {
  /** The one instance (stateless). */
  static final Nd4jOptim INSTANCE = new Nd4jOptim();

  private Nd4jOptim() {}

  @Override
  public void adamW(
      INDArray p,
      INDArray g,
      INDArray m,
      INDArray v,
      INDArray s,
      AdamWConfig cfg,
      double lrP,
      double biasCorrection1,
      double biasCorrection2Sqrt) {
    double oneMinusB1 = 1 - cfg.beta1();
    if (cfg.weightDecay() != 0) {
      p.muli(1 - lrP * cfg.weightDecay()); // p *= 1 - lr_p * wd (decoupled decay)
    }
    s.assign(g).subi(m); // s = g - m
    if (oneMinusB1 < 0.5) { // m = b1*m + (1-b1)*g, evaluated as torch's m.lerp_(g, 1 - b1):
      s.muli(oneMinusB1); // s = (1 - b1) * (g - m)
      m.addi(s); // m = m + (1 - b1) * (g - m)
    } else {
      s.muli(1 - oneMinusB1); // s = b1 * (g - m)
      m.assign(s.rsubi(g)); // m = g - b1 * (g - m)
    }
    s.assign(g).muli(1 - cfg.beta2()).muli(g); // s = (1 - b2) * g * g, as torch's addcmul_
    v.muli(cfg.beta2()).addi(s); // v = b2 * v + (1 - b2) * g^2
    s.assign(v); // s = v
    Transforms.sqrt(s, false); // s = sqrt(v)
    s.divi(biasCorrection2Sqrt); // s = sqrt(v) / sqrt(1 - b2^t)
    s.addi(cfg.eps()); // s = denom = sqrt(v) / sqrt(1 - b2^t) + eps
    s.rdivi(m); // s = m / denom
    s.muli(lrP / biasCorrection1); // s = step_size * m / denom, step_size = lr_p / (1 - b1^t)
    p.subi(s); // p -= step_size * m / denom
  }

  @Override
  public double sumSquares(INDArray g) {
    INDArray d = g.dataType() == DataType.DOUBLE ? g : g.castTo(DataType.DOUBLE);
    double n = d.norm2Number().doubleValue(); // this tensor's L2 norm, in double
    return n * n;
  }

  @Override
  public void scale(INDArray g, double c) {
    g.muli(c);
  }
}
