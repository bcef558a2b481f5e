package io.loraspark.pipeline.ml;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.pipeline.cli.Main;
import io.loraspark.train.loop.AdapterStatus;
import io.loraspark.train.loop.Evaluator;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.model.Adapters;
import io.loraspark.train.model.LossStats;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.TokenRow;
import io.loraspark.train.spark.BaseModelCache;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.ml.Model;
import org.apache.spark.ml.Pipeline;
import org.apache.spark.ml.PipelineModel;
import org.apache.spark.ml.PipelineStage;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.param.ParamPair;
import org.apache.spark.ml.param.Params;
import org.apache.spark.ml.tuning.ParamGridBuilder;
import org.apache.spark.ml.tuning.TrainValidationSplit;
import org.apache.spark.ml.tuning.TrainValidationSplitModel;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The Spark ML stages on the real stories260K and the tokenized self-instruct seeds: a param grid
 * through TrainValidationSplit, the evaluator against the score CLI, and persistence.
 */
class LoraEstimatorTest {
  static SparkSession spark;

  /** The tokenized seeds (cached); rows the tokenizer rejected have null ids. */
  static Dataset<Row> tokens;

  /**
   * One small adapter trained on {@link #tokens}, shared by the evaluator and persistence tests.
   */
  static LoraAdapterModel model;

  @TempDir Path tmp;

  @BeforeAll
  static void start() {
    spark = MlFixtures.spark();
    tokens = MlFixtures.tokenizer().transform(MlFixtures.seeds(spark)).cache();
    model = estimator().setRank(4).setLrRatio(4).fit(tokens);
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  /** Few, large steps: quick, and enough to move the adapters away from the base. */
  static LoraEstimator estimator() {
    return new LoraEstimator()
        .setModelDir(MlFixtures.STORIES.toString())
        .setSteps(10)
        .setBatchSize(4)
        .setLearningRate(2e-3)
        .setSeed(7);
  }

  @Test
  void trainValidationSplitPicksTheGridPointWithTheLowestPerplexity() {
    LoraEstimator lora = estimator();
    Pipeline pipeline =
        new Pipeline().setStages(new PipelineStage[] {MlFixtures.tokenizer(), lora});
    ParamMap[] grid =
        new ParamGridBuilder()
            .addGrid(lora.rank(), new int[] {2, 4})
            .addGrid(lora.lrRatio(), new double[] {1, 8})
            .build();
    TrainValidationSplit tvs =
        new TrainValidationSplit()
            .setEstimator(pipeline)
            .setEvaluator(new PerplexityEvaluator())
            .setEstimatorParamMaps(grid)
            .setTrainRatio(0.75)
            .setSeed(11)
            .setParallelism(2)
            .setCollectSubModels(true);
    Dataset<Row> seeds = MlFixtures.seeds(spark).cache();
    TrainValidationSplitModel fitted = tvs.fit(seeds);

    double[] metrics = fitted.validationMetrics();
    assertThat(metrics).as("one validation perplexity per grid point").hasSize(4);
    for (double m : metrics) {
      assertThat(Double.isFinite(m) && m > 1)
          .as("perplexity %s", Arrays.toString(metrics))
          .isTrue();
    }
    int best = 0;
    for (int i = 1; i < metrics.length; i++) {
      best = metrics[i] < metrics[best] ? i : best;
    }
    LoraAdapterModel bestLora = loraStage((PipelineModel) fitted.bestModel());
    assertThat(bestLora.getRank())
        .as("best rank, metrics %s", Arrays.toString(metrics))
        .isEqualTo(grid[best].apply(lora.rank()));
    assertThat(bestLora.getLrRatio()).isEqualTo(grid[best].apply(lora.lrRatio()));

    // TrainValidationSplit's own split of the input (same call, same seed): the training rows.
    Dataset<Row> trainRows =
        MlFixtures.tokenizer()
            .transform(seeds.randomSplit(new double[] {0.75, 0.25}, 11)[0])
            .cache();
    double baseLoss = baseLoss(trainRows);
    Model<?>[] subModels = fitted.subModels();
    for (int i = 0; i < subModels.length; i++) {
      LoraAdapterModel m = loraStage((PipelineModel) subModels[i]);
      double loss =
          new PerplexityEvaluator().setMetricName("loss").evaluate(m.transform(trainRows));
      assertThat(loss)
          .as(
              "grid point %d (rank %d, lr_ratio %s): loss on its training rows",
              i, m.getRank(), m.getLrRatio())
          .isLessThan(baseLoss);
      assertThat(m.summary().status()).isEqualTo(AdapterStatus.OK);
      assertThat(m.summary().steps()).isEqualTo(10);
    }
  }

  @Test
  void evaluatorMatchesTheScoreCommandOnTheSavedAdapter() throws Exception {
    Dataset<Row> scored = model.transform(tokens).cache();
    double perplexity = new PerplexityEvaluator().evaluate(scored);
    double loss = new PerplexityEvaluator().setMetricName("loss").evaluate(scored);
    long tokenCount = scored.agg(functions.sum("tokens")).first().getLong(0);

    model.write().save(tmp.resolve("model").toString());
    Path adapter = tmp.resolve("model").resolve(LoraAdapterModel.ADAPTER_DIR);
    Path jsonl = writeJsonl(scoredRows(tokens), tmp.resolve("rows.jsonl"));
    JsonNode cli =
        score(
            "--model",
            MlFixtures.STORIES.toString(),
            "--adapter",
            adapter.toString(),
            "--data",
            jsonl.toString());

    assertThat(cli.get("tokens").asLong()).as("scored tokens").isEqualTo(tokenCount);
    assertThat(loss)
        .as("loss vs score CLI")
        .isCloseTo(cli.get("loss").asDouble(), within(1e-6 * loss));
    assertThat(perplexity)
        .as("perplexity = exp(loss)")
        .isCloseTo(Math.exp(cli.get("loss").asDouble()), within(1e-6 * perplexity));
    assertThat(new PerplexityEvaluator().isLargerBetter()).isFalse();
  }

  @Test
  void estimatorEvaluatorAndModelRoundTripThroughSaveAndLoad() throws Exception {
    LoraEstimator est = estimator().setRank(2).setTargets("q,v").setDropout(0.05);
    est.write().save(tmp.resolve("estimator").toString());
    LoraEstimator estBack = LoraEstimator.load(tmp.resolve("estimator").toString());
    assertThat(estBack.uid()).isEqualTo(est.uid());
    assertThat(paramValues(estBack)).isEqualTo(paramValues(est));

    PerplexityEvaluator eval = new PerplexityEvaluator().setMetricName("loss");
    eval.write().save(tmp.resolve("evaluator").toString());
    PerplexityEvaluator evalBack = PerplexityEvaluator.load(tmp.resolve("evaluator").toString());
    assertThat(paramValues(evalBack)).isEqualTo(paramValues(eval));

    model.write().save(tmp.resolve("model").toString());
    LoraAdapterModel back = LoraAdapterModel.load(tmp.resolve("model").toString());
    assertThat(back.uid()).isEqualTo(model.uid());
    assertThat(paramValues(back)).isEqualTo(paramValues(model));
    assertThat(back.summary()).isEqualTo(model.summary());
    Dataset<Row> few = tokens.limit(24).cache();
    assertThat(nllAndTokens(back.transform(few))).isEqualTo(nllAndTokens(model.transform(few)));

    assertSameWeights(back.weights(), model.weights());
    ModelConfig config = ModelConfig.load(MlFixtures.STORIES);
    LoraWeights saved = PeftAdapter.load(tmp.resolve("model/adapter"), config, DataType.FLOAT);
    assertSameWeights(saved, model.weights());
    assertThat(saved.config()).isEqualTo(model.loraConfig());
    model.saveAdapter(tmp.resolve("peft").toString());
    assertSameWeights(
        PeftAdapter.load(tmp.resolve("peft"), config, DataType.FLOAT), model.weights());
    assertThatThrownBy(() -> model.saveAdapter(tmp.resolve("peft").toString()))
        .hasMessageContaining("already exists");

    Dataset<Row> seeds = MlFixtures.seeds(spark).limit(24).cache();
    PipelineModel pipeline =
        new Pipeline().setStages(new PipelineStage[] {MlFixtures.tokenizer(), model}).fit(seeds);
    pipeline.write().save(tmp.resolve("pipeline").toString());
    PipelineModel pipelineBack = PipelineModel.load(tmp.resolve("pipeline").toString());
    assertThat(nllAndTokens(pipelineBack.transform(seeds)))
        .isEqualTo(nllAndTokens(pipeline.transform(seeds)));
  }

  /**
   * The method param: a DoRA adapter (whose branch reads the frozen weights) and a VeRA adapter
   * (shared projections) train through the estimator, score in the executors on the base, and the
   * saved model scores the same after loading; the saved PEFT directory is the method's own.
   */
  @Test
  void methodsTrainScoreAndRoundTripThroughTheEstimator() throws Exception {
    Dataset<Row> few = tokens.limit(24).cache();
    for (String method : new String[] {"dora", "vera"}) {
      LoraAdapterModel m = estimator().setMethod(method).setRank(2).setTargets("q,v").fit(tokens);
      assertThat(m.loraConfig().method().key()).isEqualTo(method);
      double loss = new PerplexityEvaluator().setMetricName("loss").evaluate(m.transform(few));
      assertThat(loss).as("%s loss", method).isFinite().isPositive();
      Path dir = tmp.resolve(method);
      m.write().save(dir.toString());
      LoraAdapterModel back = LoraAdapterModel.load(dir.toString());
      assertThat(back.getMethod()).isEqualTo(method);
      assertThat(nllAndTokens(back.transform(few))).isEqualTo(nllAndTokens(m.transform(few)));
      assertThat(PeftAdapter.readConfig(dir.resolve(LoraAdapterModel.ADAPTER_DIR)).method().key())
          .isEqualTo(method);
    }
    assertThatThrownBy(() -> estimator().setMethod("ia3"))
        .hasMessageContaining("method")
        .hasMessageContaining("delta-lora");
  }

  /**
   * The recomputeActivations param: set on the estimator, copied to the model, and a fit with it
   * gives the same adapter as without, dropout on (its masks must be drawn again the same way
   * during the recompute). Equal weights are the point of recomputation, so this test cannot tell
   * whether the executor recomputed; {@code RecomputeTest} covers the trainer's two paths.
   */
  @Test
  void recomputedActivationsTrainTheSameAdapter() {
    LoraEstimator kept = estimator().setRank(2).setTargets("q,v,down").setDropout(0.1);
    LoraEstimator recomputed = kept.copy(new org.apache.spark.ml.param.ParamMap());
    recomputed.setRecomputeActivations(true);
    assertThat(kept.getRecomputeActivations()).isFalse();
    assertThat(recomputed.getRecomputeActivations()).isTrue();
    LoraAdapterModel a = kept.fit(tokens);
    LoraAdapterModel b = recomputed.fit(tokens);
    assertThat(b.getRecomputeActivations()).as("copied to the model").isTrue();
    assertSameWeights(b.weights(), a.weights());
  }

  @Test
  void fitNamesTheModelDirectoryAndTheMissingRows() {
    assertThatThrownBy(() -> estimator().setModelDir(tmp.toString()).fit(tokens))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(tmp.toString())
        .hasMessageContaining("config.json");
    Dataset<Row> rejected = tokens.where(functions.col("input_ids").isNull());
    assertThat(rejected.count()).as("the fixture has rows the tokenizer rejected").isPositive();
    assertThatThrownBy(() -> estimator().fit(rejected))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("no row to train on")
        .hasMessageContaining("input_ids");
    assertThatThrownBy(() -> model.transform(tokens.drop("labels")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("Column labels (labelsCol) does not exist");
    assertThatThrownBy(() -> new PerplexityEvaluator().evaluate(tokens))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("Column nll does not exist");
  }

  private static LoraAdapterModel loraStage(PipelineModel p) {
    return (LoraAdapterModel) p.stages()[1];
  }

  /** The base model's mean NLL per scored token on {@code rows}, by the engine directly. */
  private static double baseLoss(Dataset<Row> rows) {
    LossStats s =
        Evaluator.score(
            BaseModelCache.get(MlFixtures.STORIES),
            Adapters.NONE,
            scoredRows(rows),
            Evaluator.DEFAULT_BATCH_SIZE,
            0);
    return s.totalNll() / s.totalCount();
  }

  /** The rows with ids, as the engine's token rows. */
  private static List<TokenRow> scoredRows(Dataset<Row> rows) {
    List<TokenRow> out = new ArrayList<>();
    for (Row r : rows.where(functions.col("input_ids").isNotNull()).collectAsList()) {
      out.add(
          new TokenRow(
              ints(r.getList(r.fieldIndex("input_ids"))), ints(r.getList(r.fieldIndex("labels")))));
    }
    return out;
  }

  private static int[] ints(List<Integer> list) {
    return list.stream().mapToInt(Integer::intValue).toArray();
  }

  private static Path writeJsonl(List<TokenRow> rows, Path file) throws Exception {
    ObjectMapper json = new ObjectMapper();
    StringBuilder sb = new StringBuilder();
    for (TokenRow r : rows) {
      ObjectNode o = json.createObjectNode();
      o.putPOJO("input_ids", r.inputIds());
      o.putPOJO("labels", r.labels());
      sb.append(o).append('\n');
    }
    return Files.writeString(file, sb);
  }

  /** {@code lora-pipeline score ...} in process: its one JSON line. */
  private static JsonNode score(String... args) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    String[] all = new String[args.length + 1];
    all[0] = "score";
    System.arraycopy(args, 0, all, 1, args.length);
    int code =
        Main.execute(
            all,
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    assertThat(code).as("score exit code, stderr: %s", err).isZero();
    return new ObjectMapper().readTree(out.toString(StandardCharsets.UTF_8));
  }

  /** Every param's value (set or default) by name. */
  private static Map<String, Object> paramValues(Params p) {
    Map<String, Object> out = new TreeMap<>();
    for (ParamPair<?> pair : p.extractParamMap().toList()) {
      out.put(pair.param().name(), pair.value());
    }
    return out;
  }

  private static List<List<Object>> nllAndTokens(Dataset<Row> scored) {
    List<List<Object>> out = new ArrayList<>();
    for (Row r : scored.select("nll", "tokens").collectAsList()) {
      out.add(Arrays.asList(r.get(0), r.get(1)));
    }
    return out;
  }

  private static void assertSameWeights(LoraWeights a, LoraWeights b) {
    List<LoraWeights.Module> x = List.copyOf(a.modules());
    List<LoraWeights.Module> y = List.copyOf(b.modules());
    assertThat(x).hasSameSizeAs(y);
    for (int i = 0; i < x.size(); i++) {
      assertThat(x.get(i).name()).isEqualTo(y.get(i).name());
      assertThat(x.get(i).a().data().asFloat())
          .as("A of %s", x.get(i).name())
          .containsExactly(y.get(i).a().data().asFloat());
      assertThat(x.get(i).b().data().asFloat())
          .as("B of %s", x.get(i).name())
          .containsExactly(y.get(i).b().data().asFloat());
    }
  }
}
