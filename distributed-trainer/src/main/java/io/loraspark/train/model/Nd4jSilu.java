package io.loraspark.train.model;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.strict.Sigmoid;
import org.nd4j.linalg.factory.Nd4j;

/** {@link SiluKernels} in ND4J ops (any dtype): the reference. */
final class Nd4jSilu implements SiluKernels {
  @Override
  public void forward(INDArray gate, INDArray up, INDArray sig, INDArray act) {
    Nd4j.exec(new Sigmoid(gate, sig));
    act.assign(gate).muli(sig).muli(up);
  }

  @Override
  public void backward(
      INDArray gate, INDArray up, INDArray sig, INDArray dAct, INDArray dGate, INDArray dUp) {
    dUp.assign(gate).muli(sig).muli(dAct);
    dGate.assign(sig).rsubi(1.0).muli(gate).addi(1.0).muli(sig).muli(up).muli(dAct);
  }
}
