package io.loraspark.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import io.loraspark.prep.shard.ShardSchema;
import io.loraspark.train.data.ShardReader;
import io.loraspark.train.model.Batch;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataTypes;
import org.junit.jupiter.api.Test;

/**
 * The one link between preprocessing and the trainer: every column the trainer's shard reader needs
 * is in the shard schema preprocessing declares, with the type the reader expects.
 */
class ShardContractTest {
  @Test
  void trainerColumnsAreInTheShardSchema() {
    for (String column : ShardReader.COLUMNS) {
      assertThat(ShardSchema.SCHEMA.fieldNames()).contains(column);
    }
    for (String column :
        new String[] {ShardReader.INPUT_IDS, ShardReader.LABELS, ShardReader.SEGMENT_IDS}) {
      assertThat(ShardSchema.SCHEMA.apply(column).dataType())
          .as(column)
          .isInstanceOf(ArrayType.class)
          .extracting(t -> ((ArrayType) t).elementType())
          .isEqualTo(DataTypes.IntegerType);
    }
    assertThat(ShardSchema.SCHEMA.apply(ShardReader.SPLIT).dataType())
        .isEqualTo(DataTypes.StringType);
    assertThat(ShardReader.TRAIN).isEqualTo(ShardSchema.TRAIN);
    assertThat(ShardReader.EVAL).isEqualTo(ShardSchema.EVAL);
    assertThat(Batch.IGNORE).isEqualTo(ShardSchema.IGNORE_INDEX);
  }
}
