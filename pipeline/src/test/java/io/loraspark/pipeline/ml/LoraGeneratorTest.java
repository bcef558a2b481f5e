package io.loraspark.pipeline.ml;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.pipeline.generate.TextGeneration;
import io.loraspark.pipeline.testing.RandomAdapters;
import io.loraspark.prep.tokenize.TextTokenizer;
import io.loraspark.train.decode.AdapterMix;
import io.loraspark.train.decode.AdapterRegistry;
import io.loraspark.train.decode.BatchDecoder;
import io.loraspark.train.decode.DecodeEngine;
import io.loraspark.train.decode.SamplingParams;
import io.loraspark.train.lora.LoraMethod;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.spark.BaseModelCache;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.spark.ml.param.ParamMap;
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

/**
 * The generator on the real stories260K with two random adapters: every row's text is the one the
 * engine gives it alone, adapters matter, sampling does not depend on the partitioning, and bad
 * schemas, params and rows fail with one line naming what is wrong.
 */
class LoraGeneratorTest {
  static final StructType PROMPTS =
      new StructType()
          .add("id", DataTypes.IntegerType)
          .add("prompt", DataTypes.StringType)
          .add("adapter", DataTypes.StringType);

  /** (prompt, adapter): one prompt under both adapters and the base, others under one each. */
  static final String[][] ROWS = {
    {"Once upon a time", "alpha"},
    {"Once upon a time", "beta"},
    {"Once upon a time", null},
    {"The little dog saw a big", "alpha"},
    {"Lily went to the park with her mom", "beta"},
    {null, "alpha"},
    {"Tom had a red ball", ""},
    {"One day, a girl named Sue", "beta"},
  };

  static SparkSession spark;
  static ModelWeights base;
  @TempDir static Path adapters;

  @BeforeAll
  static void start() {
    spark = MlFixtures.spark();
    base = BaseModelCache.get(MlFixtures.STORIES).weights();
    saveAdapter("alpha", 1);
    saveAdapter("beta", 2);
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  /** A rank-4 LoRA on every projection with B ~ N(0, 0.2²), so it changes the greedy text. */
  static void saveAdapter(String name, long seed) {
    RandomAdapters.save(
        base,
        adapters.resolve(name),
        LoraMethod.LORA,
        4,
        seed,
        seed,
        0.2,
        MlFixtures.STORIES.toString());
  }

  static Dataset<Row> prompts(String[][] rows) {
    List<Row> list = new ArrayList<>();
    for (int i = 0; i < rows.length; i++) {
      list.add(RowFactory.create(i, rows[i][0], rows[i][1]));
    }
    return spark.createDataFrame(list, PROMPTS);
  }

  static LoraGenerator generator() {
    return new LoraGenerator()
        .setModelPath(MlFixtures.STORIES.toString())
        .setAdapterCol("adapter")
        .setAdapterRoot(adapters.toString())
        .setMaxNewTokens(12);
  }

  /** The generated column, in the order the rows come out. */
  static List<String> texts(Dataset<Row> out) {
    return out.collectAsList().stream().map(r -> r.<String>getAs("generated")).toList();
  }

  /** What the engine generates for each row alone, in this JVM, without Spark. */
  static List<String> alone(String[][] rows, LoraGenerator g) {
    DecodeEngine engine = new DecodeEngine(base);
    List<String> out = new ArrayList<>();
    try (TextTokenizer tok = TextTokenizer.load(MlFixtures.STORIES)) {
      TextGeneration gen = new TextGeneration(tok);
      for (String[] row : rows) {
        if (row[0] == null) {
          out.add(null);
          continue;
        }
        AdapterMix mix =
            row[1] == null || row[1].isEmpty()
                ? AdapterMix.NONE
                : AdapterMix.of(AdapterRegistry.load(row[1], adapters.resolve(row[1]), base));
        SamplingParams params =
            new SamplingParams(
                g.getMaxNewTokens(),
                g.getTemperature(),
                g.getTopK(),
                g.getTopP(),
                LoraGenerator.rowSeed(g.getSeed(), row[0]),
                Set.of(),
                false);
        List<String> stops = List.of(g.getStopStrings());
        TextGeneration.TextRequest request = gen.request(row[0], mix, params, stops);
        BatchDecoder.generate(engine, request.request());
        out.add(request.text().completion());
      }
    }
    return out;
  }

  @Test
  void batchedRowsGetTheTextsTheyGetAlone() {
    List<String> expected = alone(ROWS, generator());
    for (int maxBatchRows : new int[] {64, 2}) {
      List<String> got =
          texts(generator().setMaxBatchRows(maxBatchRows).transform(prompts(ROWS).coalesce(1)));
      assertThat(got)
          .as("texts in input order with maxBatchRows %d", maxBatchRows)
          .isEqualTo(expected);
    }
    List<String> twoPartitions =
        texts(generator().transform(prompts(ROWS).repartition(2)).orderBy("id"));
    assertThat(twoPartitions).as("texts over two partitions").isEqualTo(expected);
    for (int i = 0; i < ROWS.length; i++) {
      if (ROWS[i][0] == null) {
        assertThat(expected.get(i)).as("a null prompt gets a null text").isNull();
      } else {
        assertThat(expected.get(i)).as("row %d's text", i).isNotBlank();
      }
    }
  }

  @Test
  void rowsWithDifferentAdaptersGetDifferentTexts() {
    List<String> got = texts(generator().transform(prompts(Arrays.copyOf(ROWS, 3))));
    assertThat(got).as("'Once upon a time' under alpha, beta and the base").doesNotHaveDuplicates();
    List<String> baseOnly =
        texts(
            new LoraGenerator()
                .setModelPath(MlFixtures.STORIES.toString())
                .setMaxNewTokens(12)
                .transform(prompts(Arrays.copyOf(ROWS, 3))));
    assertThat(baseOnly).as("without adapterCol every row uses the base").containsOnly(got.get(2));
  }

  @Test
  void aRowReleasesItsAdapterWhenItFinishes() {
    long alpha = AdapterRegistry.load("alpha", adapters.resolve("alpha"), base).bytes();
    long beta = AdapterRegistry.load("beta", adapters.resolve("beta"), base).bytes();
    String[][] rows = {
      {"Once upon a time", "alpha"},
      {"Once upon a time", "beta"},
      {"The little dog saw a big", "alpha"},
      {"Lily went to the park with her mom", "beta"},
    };
    LoraGenerator g =
        generator().setMaxBatchRows(1).setAdapterCacheBytes(Math.max(alpha, beta) * 3 / 2);
    assertThat(texts(g.transform(prompts(rows).coalesce(1))))
        .as("one adapter fits the cache: each row's lease must close before the next loads")
        .isEqualTo(alone(rows, g));
  }

  @Test
  void samplingDependsOnThePromptNotTheRowsPlace() {
    LoraGenerator g = generator().setTemperature(1.0).setTopK(40).setTopP(0.9).setSeed(9);
    List<String> one = texts(g.transform(prompts(ROWS).coalesce(1)));
    List<String> three = texts(g.transform(prompts(ROWS).repartition(3)).orderBy("id"));
    assertThat(three).as("the same texts over 1 and 3 partitions").isEqualTo(one);
    assertThat(one).as("sampled rows match the engine alone").isEqualTo(alone(ROWS, g));
    assertThat(LoraGenerator.rowSeed(9, "a")).isNotEqualTo(LoraGenerator.rowSeed(9, "b"));
  }

  @Test
  void stopStringsCutTheText() {
    LoraGenerator g = generator().setMaxNewTokens(40).setStopStrings(".");
    List<String> got = texts(g.transform(prompts(ROWS)));
    assertThat(got).as("texts cut at the stop string").isEqualTo(alone(ROWS, g));
    assertThat(got).allSatisfy(t -> assertThat(t == null || !t.contains(".")).isTrue());
    assertThat(alone(ROWS, g.copy(new ParamMap()).setStopStrings()))
        .as("without the stop string some texts run past a period")
        .anyMatch(t -> t != null && t.contains("."));
  }

  @Test
  void schemaErrorsNameTheColumn() {
    Dataset<Row> df = prompts(ROWS);
    assertThatThrownBy(() -> generator().setPromptCol("text").transform(df))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("Column text (promptCol) does not exist; columns are [id, prompt, adapter]");
    assertThatThrownBy(() -> generator().setPromptCol("id").transform(df))
        .hasMessage("Column id must be string but was int");
    assertThatThrownBy(() -> generator().setOutputCol("adapter").transform(df))
        .hasMessage("Output column adapter already exists.");
    assertThatThrownBy(
            () ->
                new LoraGenerator()
                    .setModelPath(MlFixtures.STORIES.toString())
                    .setAdapterCol("adapter")
                    .transform(df))
        .hasMessageStartingWith("adapterRoot is not set: it is required when adapterCol is set");
    assertThatThrownBy(() -> new LoraGenerator().transformSchema(PROMPTS))
        .hasMessageStartingWith("modelPath is not set");
    assertThat(generator().transformSchema(PROMPTS).apply("generated").dataType())
        .isEqualTo(DataTypes.StringType);
  }

  @Test
  void unknownAdapterFailsTheJobNamingIt() {
    Dataset<Row> out = generator().transform(prompts(new String[][] {{"Once", "gamma"}}));
    assertThatThrownBy(out::collectAsList)
        .satisfies(
            e ->
                assertThat(badInput(e))
                    .as("the job's cause")
                    .hasMessageStartingWith("adapter name \"gamma\" does not exist"));
  }

  @Test
  void promptLongerThanTheContextFailsTheJob() {
    String longPrompt = "Once upon a time ".repeat(200);
    Dataset<Row> out = generator().transform(prompts(new String[][] {{longPrompt, null}}));
    assertThatThrownBy(out::collectAsList)
        .satisfies(
            e ->
                assertThat(badInput(e))
                    .as("the job's cause")
                    .hasMessageContaining("but the model's context (max_position_embeddings) is"));
  }

  @Test
  void defaultsAndBadValues() {
    LoraGenerator g = new LoraGenerator();
    assertThat(g.getPromptCol()).isEqualTo("prompt");
    assertThat(g.getOutputCol()).isEqualTo("generated");
    assertThat(g.getAdapterCol()).isNull();
    assertThat(g.getMaxNewTokens()).isEqualTo(64);
    assertThat(g.getTemperature()).as("greedy by default").isZero();
    assertThat(g.getTopK()).isZero();
    assertThat(g.getTopP()).isEqualTo(1.0);
    assertThat(g.getStopStrings()).isEmpty();
    assertThat(g.getAdapterCacheBytes()).isEqualTo(1L << 30);
    assertThat(g.getMaxBatchRows()).isEqualTo(64);
    assertThatThrownBy(() -> g.setTopP(0))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("Cannot set topP to 0.0: must be a finite number in (0, 1]");
    assertThatThrownBy(() -> g.setTemperature(-1))
        .hasMessage("Cannot set temperature to -1.0: must be a finite number >= 0");
    assertThatThrownBy(() -> g.setMaxBatchRows(0))
        .hasMessage("Cannot set maxBatchRows to 0: must be an integer >= 1");
    assertThatThrownBy(() -> g.setAdapterCacheBytes(0))
        .hasMessage("Cannot set adapterCacheBytes to 0: must be an integer >= 1");
    assertThatThrownBy(() -> g.setStopStrings("\n", ""))
        .hasMessage("Cannot set stopStrings to [\n, ]: must be strings that are not empty");
  }

  @Test
  void paramsRoundTripThroughSaveAndLoad(@TempDir Path tmp) throws Exception {
    LoraGenerator g = generator().setStopStrings("\n").setSeed(5).setTemperature(0.7);
    String path = tmp.resolve("generator").toString();
    g.write().save(path);
    LoraGenerator back = LoraGenerator.load(path);
    assertThat(back.uid()).isEqualTo(g.uid());
    Map<String, Object> a = new HashMap<>();
    Map<String, Object> b = new HashMap<>();
    for (var p : g.params()) {
      a.put(p.name(), g.isDefined(p) ? shown(g.getOrDefault(p)) : null);
      var q = back.getParam(p.name());
      b.put(p.name(), back.isDefined(q) ? shown(back.getOrDefault(q)) : null);
    }
    assertThat(b).as("the set params").isEqualTo(a);
  }

  private static Object shown(Object v) {
    return v instanceof String[] s ? List.of(s) : v;
  }

  /** The first IllegalArgumentException in {@code e}'s cause chain (Spark wraps task failures). */
  private static Throwable badInput(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof IllegalArgumentException) {
        return t;
      }
    }
    throw new AssertionError("no IllegalArgumentException in the cause chain of " + e, e);
  }
}
