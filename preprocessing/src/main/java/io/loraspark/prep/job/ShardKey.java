package io.loraspark.prep.job;

import java.io.Serializable;
import java.util.Comparator;
import org.apache.spark.Partitioner;

/**
 * Sort key of an example in the shards: shard, then train before eval, then the seeded order key
 * and the id (a total order, so every shard's row order is deterministic).
 *
 * @param shard shard index
 * @param eval 0 for train, 1 for eval
 * @param order seeded order key
 * @param exampleId tie breaker
 */
record ShardKey(int shard, int eval, long order, String exampleId) implements Serializable {

  /** Total order within a shard. */
  static final class Order implements Comparator<ShardKey>, Serializable {
    @Override
    public int compare(ShardKey a, ShardKey b) {
      int c = Integer.compare(a.shard, b.shard);
      if (c == 0) {
        c = Integer.compare(a.eval, b.eval);
      }
      if (c == 0) {
        c = Long.compare(a.order, b.order);
      }
      return c != 0 ? c : a.exampleId.compareTo(b.exampleId);
    }
  }

  /** Partition i holds shard i. */
  static final class ByShard extends Partitioner {
    private final int shards;

    ByShard(int shards) {
      this.shards = shards;
    }

    @Override
    public int numPartitions() {
      return shards;
    }

    @Override
    public int getPartition(Object key) {
      return ((ShardKey) key).shard();
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof ByShard b && b.shards == shards;
    }

    @Override
    public int hashCode() {
      return shards;
    }
  }
}
