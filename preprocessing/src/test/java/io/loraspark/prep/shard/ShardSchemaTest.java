package io.loraspark.prep.shard;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;

class ShardSchemaTest {

  @Test
  void declaresTheAgreedColumns() {
    assertThat(ShardSchema.SCHEMA.fieldNames())
        .containsExactly(
            "example_id",
            "split",
            "input_ids",
            "labels",
            "segment_ids",
            "num_tokens",
            "num_label_tokens",
            "num_examples",
            "source");
    assertThat(ShardSchema.SCHEMA.apply("input_ids").dataType().simpleString())
        .isEqualTo("array<int>");
    ShardSchema.validate(ShardSchema.SCHEMA);
    ShardSchema.validate(ShardSchema.SCHEMA.asNullable());
  }

  @Test
  void namesTheMistypedMissingOrExtraColumn() {
    StructField[] fields = ShardSchema.SCHEMA.fields().clone();
    fields[3] =
        DataTypes.createStructField("labels", DataTypes.createArrayType(DataTypes.LongType), false);
    assertThatThrownBy(() -> ShardSchema.validate(new StructType(fields)))
        .hasMessage("Column labels must be array<int> but was array<bigint>");
    StructType missing =
        new StructType(
            List.of(ShardSchema.SCHEMA.fields()).subList(0, 8).toArray(StructField[]::new));
    assertThatThrownBy(() -> ShardSchema.validate(missing))
        .hasMessageContaining("Column source is missing");
    assertThatThrownBy(
            () -> ShardSchema.validate(ShardSchema.SCHEMA.add("extra", DataTypes.StringType)))
        .hasMessageContaining("must be exactly");
  }
}
