package io.loraspark.pipeline.generate;

import static org.assertj.core.api.Assertions.assertThat;

import io.loraspark.prep.tokenize.TextTokenizer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link CompletionText} against a naive reference on stories260K's real tokenizer: the reference
 * decodes the whole completion after every token and searches all of it (what generation did before
 * incremental detokenization). Both must stop at the same token and give the same text, and the
 * pieces released while streaming must concatenate to exactly that text.
 */
class CompletionTextTest {
  /**
   * stories260K's first merged piece: ids below are 3 specials and 256 byte pieces. Random byte
   * pieces make invalid UTF-8, where a whole decode and a windowed one replace different bytes with
   * U+FFFD (tokenizers' ByteFallback replaces a whole invalid run); valid multi-byte characters
   * split over byte pieces are covered by {@link
   * #matchesTheWholeDecodeOnStoriesAndSplitCharacters}.
   */
  static final int FIRST_PIECE = 259;

  static TextTokenizer tok;

  @BeforeAll
  static void load() {
    tok = TextTokenizer.load(Path.of("../models/stories260K"));
  }

  @AfterAll
  static void close() {
    tok.close();
  }

  /** The naive reference: the first token count whose whole decode holds a stop string, or -1. */
  static int naiveStop(int[] ids, List<String> stops) {
    for (int n = 1; n <= ids.length; n++) {
      String text = tok.decode(Arrays.copyOf(ids, n), true);
      if (stops.stream().anyMatch(text::contains)) {
        return n;
      }
    }
    return -1;
  }

  /** The naive text: the whole decode of the tokens fed, cut before the earliest stop string. */
  static String naiveText(int[] ids, int fed, List<String> stops) {
    String text = tok.decode(Arrays.copyOf(ids, fed), true);
    int cut = -1;
    for (String s : stops) {
      int i = text.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) {
        cut = i;
      }
    }
    return cut < 0 ? text : text.substring(0, cut);
  }

  /** Feeds ids one at a time as the decoder does; checks stop point, text and streamed pieces. */
  static void check(String name, int[] ids, List<String> stops) {
    CompletionText text = new CompletionText(tok, Set.of(), stops, null);
    StringBuilder streamed = new StringBuilder();
    int stoppedAt = -1;
    for (int n = 1; n <= ids.length && stoppedAt < 0; n++) {
      if (text.stop(ids, n)) {
        stoppedAt = n;
      }
      streamed.append(text.take());
    }
    streamed.append(text.finish());
    int want = naiveStop(ids, stops);
    assertThat(stoppedAt).as("%s: the token that completes a stop string", name).isEqualTo(want);
    String wantText = naiveText(ids, want < 0 ? ids.length : want, stops);
    assertThat(text.completion()).as("%s: completion text", name).isEqualTo(wantText);
    assertThat(streamed.toString()).as("%s: streamed pieces", name).isEqualTo(wantText);
  }

  @Test
  void stopStringSpanningTokensEndsAtTheTokenThatCompletesIt() {
    String story = "Once upon a time, there was a little girl named Lily. She liked to play.";
    int[] ids = tok.encode(story, false);
    int little = -1;
    for (int i = 0; i < ids.length; i++) {
      if (tok.decode(new int[] {ids[i]}, true).contains("little")) {
        little = i;
      }
    }
    assertThat(tok.decode(new int[] {ids[little + 1]}, true))
        .as("'little girl' is split over tokens")
        .doesNotContain("little");
    CompletionText text = new CompletionText(tok, Set.of(), List.of("ttle gi"), null);
    StringBuilder streamed = new StringBuilder();
    for (int n = 1; n <= ids.length; n++) {
      boolean stop = text.stop(ids, n);
      String piece = text.take();
      assertThat(piece).as("nothing of the stop string is released").doesNotContain("tt");
      streamed.append(piece);
      if (stop) {
        assertThat(tok.decode(Arrays.copyOf(ids, n - 1), true)).doesNotContain("ttle gi");
        assertThat(tok.decode(Arrays.copyOf(ids, n), true)).contains("ttle gi");
        break;
      }
      assertThat(n).as("stopped before the story ends").isLessThan(ids.length);
    }
    streamed.append(text.finish());
    assertThat(text.completion()).isEqualTo("Once upon a time, there was a li");
    assertThat(streamed.toString()).isEqualTo(text.completion());
  }

  @Test
  void matchesTheWholeDecodeOnStoriesAndSplitCharacters() {
    String[] texts = {
      "Once upon a time, there was a little girl named Lily. She liked to play in the park.",
      "The café served tea ☕ and cake 🍰 to the kids, and they said: \"thank you!\"",
      "Tom said, \"Let's go!\"\nThey ran home.\n\nThe end."
    };
    List<List<String>> stopSets =
        List.of(
            List.of(),
            List.of("park"),
            List.of("é se"),
            List.of("☕ and"),
            List.of("🍰"),
            List.of("\n\n"),
            List.of("!\"\n", "ran"),
            List.of("e", "The"),
            List.of("zzz"));
    for (String t : texts) {
      int[] ids = tok.encode(t, false);
      for (List<String> stops : stopSets) {
        check(t + " / " + stops, ids, stops);
      }
    }
  }

  @Test
  void matchesTheWholeDecodeOnRandomTokens() {
    Random rnd = new Random(11);
    for (int trial = 0; trial < 60; trial++) {
      int[] ids = new int[40];
      for (int i = 0; i < ids.length; i++) {
        ids[i] = FIRST_PIECE + rnd.nextInt(tok.vocabSize() - FIRST_PIECE);
      }
      String whole = tok.decode(ids, true);
      int from = rnd.nextInt(Math.max(1, whole.length() - 4));
      String stop = whole.substring(from, Math.min(whole.length(), from + 1 + rnd.nextInt(5)));
      check("trial " + trial, ids, stop.isEmpty() ? List.of() : List.of(stop));
    }
  }

  @Test
  void stopIdsAreNoPartOfTheText() {
    int[] ids = tok.encode("Once upon a time", false);
    int[] withEos = Arrays.copyOf(ids, ids.length + 1);
    withEos[ids.length] = tok.eosId();
    CompletionText text = new CompletionText(tok, Set.of(tok.eosId()), List.of(), null);
    text.stop(withEos, withEos.length);
    assertThat(text.completion()).isEqualTo("Once upon a time");
  }
}
