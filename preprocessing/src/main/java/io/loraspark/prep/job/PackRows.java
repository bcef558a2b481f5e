package io.loraspark.prep.job;

import io.loraspark.prep.shard.Packer;
import io.loraspark.prep.shard.ShardRow;
import io.loraspark.prep.shard.ShardSchema;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.Iterator;
import java.util.NoSuchElementException;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.sql.Row;
import scala.Tuple2;

/** Executor step 3: the sorted examples of one shard → shard rows (packed or not), lazily. */
final class PackRows
    implements FlatMapFunction<Iterator<Tuple2<ShardKey, Outcome.Tokenized>>, Row> {
  private final int maxSeqLen;
  private final boolean pack;

  PackRows(int maxSeqLen, boolean pack) {
    this.maxSeqLen = maxSeqLen;
    this.pack = pack;
  }

  @Override
  public Iterator<Row> call(Iterator<Tuple2<ShardKey, Outcome.Tokenized>> examples) {
    Packer packer = new Packer(maxSeqLen, pack);
    Deque<ShardRow> ready = new ArrayDeque<>();
    return new Iterator<>() {
      boolean finished;

      @Override
      public boolean hasNext() {
        while (ready.isEmpty() && !finished) {
          if (examples.hasNext()) {
            Outcome.Tokenized t = examples.next()._2();
            String split = t.eval() ? ShardSchema.EVAL : ShardSchema.TRAIN;
            ready.addAll(
                packer.add(
                    new Packer.Member(t.exampleId(), split, t.inputIds(), t.labels(), t.source())));
          } else {
            ready.addAll(packer.finish());
            finished = true;
          }
        }
        return !ready.isEmpty();
      }

      @Override
      public Row next() {
        if (!hasNext()) {
          throw new NoSuchElementException();
        }
        return ready.poll().toRow();
      }
    };
  }
}
