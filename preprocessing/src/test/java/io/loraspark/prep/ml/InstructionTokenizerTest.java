package io.loraspark.prep.ml;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.prep.ShardAssertions;
import io.loraspark.prep.TestData;
import io.loraspark.prep.shard.ShardSchema;
import io.loraspark.prep.tokenize.TextTokenizer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.apache.spark.ml.Pipeline;
import org.apache.spark.ml.PipelineModel;
import org.apache.spark.ml.PipelineStage;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The Spark ML wrapper: schema checks, one row out per row in, and params persistence. */
class InstructionTokenizerTest {
  static SparkSession spark;
  static TextTokenizer tokenizer;

  @TempDir Path tmp;

  @BeforeAll
  static void start() {
    spark = TestData.spark();
    tokenizer = TextTokenizer.load(TestData.STORIES);
  }

  @AfterAll
  static void stop() {
    tokenizer.close();
    spark.stop();
  }

  static Dataset<Row> data() {
    StructType schema =
        new StructType()
            .add("instruction", DataTypes.StringType)
            .add("input", DataTypes.StringType)
            .add("output", DataTypes.StringType)
            .add("id", DataTypes.IntegerType);
    return spark.createDataFrame(
        List.of(
            RowFactory.create("Tell a story.", "", "Once upon a time, Lily ran.", 1),
            RowFactory.create("Sum.", "2 and 3", "5", 2),
            RowFactory.create("Empty answer.", null, " ", 3),
            RowFactory.create("Write a long one.", null, "zqx! Zqj? ".repeat(100), 4)),
        schema);
  }

  InstructionTokenizer tokenizerStage() {
    return new InstructionTokenizer().setModelDir(TestData.STORIES.toString()).setMaxSeqLen(256);
  }

  @Test
  void appendsIdsLabelsAndReasonsOneRowPerRow() {
    List<Row> out =
        tokenizerStage().setOnTooLong("reject").transform(data()).orderBy("id").collectAsList();
    assertThat(out).hasSize(4);
    Row first = out.get(0);
    int[] ids = ShardAssertions.ints(first, "input_ids");
    int[] labels = ShardAssertions.ints(first, "labels");
    int[] scored =
        java.util.stream.IntStream.range(0, ids.length)
            .filter(i -> labels[i] != ShardSchema.IGNORE_INDEX)
            .map(i -> ids[i])
            .toArray();
    assertThat(tokenizer.decode(Arrays.copyOf(scored, scored.length - 1), false))
        .isEqualTo("Once upon a time, Lily ran.");
    assertThat(first.isNullAt(first.fieldIndex("reject_reason"))).isTrue();
    assertThat(out.get(1).isNullAt(out.get(1).fieldIndex("input_ids"))).isFalse();
    assertThat(out.get(2).getString(out.get(2).fieldIndex("reject_reason")))
        .isEqualTo("empty_field");
    assertThat(out.get(3).getString(out.get(3).fieldIndex("reject_reason"))).isEqualTo("too_long");
    assertThat(out.get(3).isNullAt(out.get(3).fieldIndex("input_ids"))).isTrue();
    List<Row> truncated = tokenizerStage().transform(data()).where("id = 4").collectAsList();
    assertThat(ShardAssertions.ints(truncated.get(0), "input_ids")).hasSize(256);
  }

  @Test
  void checksTheSchemaBeforeWork() {
    assertThatThrownBy(() -> new InstructionTokenizer().transformSchema(data().schema()))
        .hasMessageContaining("setModelDir");
    assertThatThrownBy(
            () -> tokenizerStage().setResponseCol("answer").transformSchema(data().schema()))
        .hasMessageContaining("Column answer does not exist");
    assertThatThrownBy(() -> tokenizerStage().setResponseCol("id").transformSchema(data().schema()))
        .hasMessage("Column id must be string but was int");
    assertThatThrownBy(
            () -> tokenizerStage().setInputIdsCol("output").transformSchema(data().schema()))
        .hasMessage("Output column output already exists.");
    assertThat(tokenizerStage().transformSchema(data().schema()).fieldNames())
        .endsWith("input_ids", "labels", "reject_reason");
  }

  @Test
  void savesAndLoadsItsParams() throws Exception {
    InstructionTokenizer t =
        tokenizerStage()
            .setTemplate("alpaca")
            .setContextCol("")
            .setOnTooLong("reject")
            .setLabelsCol("y");
    String path = tmp.resolve("stage").toString();
    t.write().save(path);
    InstructionTokenizer loaded = InstructionTokenizer.load(path);
    assertThat(loaded.uid()).isEqualTo(t.uid());
    assertThat(loaded.getMaxSeqLen()).isEqualTo(256);
    assertThat(loaded.getOrDefault(loaded.modelDir())).isEqualTo(TestData.STORIES.toString());
    assertThat(loaded.getOrDefault(loaded.template())).isEqualTo("alpaca");
    assertThat(loaded.getOrDefault(loaded.contextCol())).isEqualTo("");
    assertThat(loaded.getOrDefault(loaded.onTooLong())).isEqualTo("reject");
    assertThat(loaded.getOrDefault(loaded.labelsCol())).isEqualTo("y");
    assertThat(loaded.transform(data()).orderBy("id").collectAsList().toString())
        .isEqualTo(t.transform(data()).orderBy("id").collectAsList().toString());

    PipelineModel model = new Pipeline().setStages(new PipelineStage[] {t}).fit(data());
    String pipelinePath = tmp.resolve("pipeline").toString();
    model.write().save(pipelinePath);
    PipelineModel reloaded = PipelineModel.load(pipelinePath);
    assertThat(reloaded.stages()[0]).isInstanceOf(InstructionTokenizer.class);
    assertThat(reloaded.transform(data()).where("y is not null").count()).isEqualTo(2);
  }
}
