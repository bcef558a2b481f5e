package io.loraspark.pipeline.serve;

import io.loraspark.prep.schema.Conversation;
import io.loraspark.prep.schema.Role;
import io.loraspark.prep.schema.RowRejection;
import io.loraspark.prep.schema.Turn;
import io.loraspark.prep.template.Piece;
import io.loraspark.prep.template.PromptTemplate;
import io.loraspark.prep.template.TemplateKind;
import io.loraspark.prep.tokenize.ExampleEncoder;
import io.loraspark.prep.tokenize.TextTokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Chat messages as the prompt the model continues, rendered and tokenized exactly as {@code
 * preprocess} renders training conversations (so an adapter trained on them sees the same tokens):
 * the model's chat template in the sandboxed Jinja engine, or the Alpaca template for a model
 * without one. The messages get a placeholder assistant turn; the prompt is everything the template
 * renders before that turn's reply (the generation prompt), EOS pieces as the EOS id.
 */
final class ChatPrompt {
  private static final String PLACEHOLDER = "x";
  private static final String MARKER = "lora-spark end-of-turn probe";

  private final TextTokenizer tokenizer;
  private final PromptTemplate template;
  private final Set<Integer> endOfTurnIds;

  ChatPrompt(TextTokenizer tokenizer, String modelDir) {
    this.tokenizer = tokenizer;
    TemplateKind kind = TemplateKind.AUTO.resolve(tokenizer.chatTemplate().isPresent(), modelDir);
    this.template = ExampleEncoder.template(kind, tokenizer);
    this.endOfTurnIds = findEndOfTurn();
  }

  /**
   * The ids that end an assistant turn under this template, to stop a chat completion with even
   * when they are not EOS ids (ChatML's {@code <|im_end|>} in SmolLM2 and Qwen, Llama 3's {@code
   * <|eot_id|>}, a {@code </s>} the template writes as text).
   *
   * <p>Found by rendering: a conversation whose assistant reply is a marker is rendered, and the
   * scored span after the marker is what the template closes a turn with (the same span {@code
   * preprocess} trains adapters to emit). Its first special token (one that decoding without
   * special tokens drops) is the end-of-turn token; whitespace-only tokens before it are passed
   * over (" </s>"), ordinary text ends the search, so a template that closes turns with plain text
   * adds no stop. The Alpaca template closes a reply with EOS itself. This is preferred to taking
   * tokenizer_config's {@code eos_token}: configs disagree with their templates (Llama 3's
   * tokenizer config names {@code <|end_of_text|>} while its template ends turns with {@code
   * <|eot_id|>}), and the rendered template is what the model was trained on. EOS ids stop every
   * request anyway.
   */
  Set<Integer> endOfTurnIds() {
    return endOfTurnIds;
  }

  private Set<Integer> findEndOfTurn() {
    List<Piece> pieces;
    try {
      pieces =
          template.render(
              new Conversation(
                  List.of(Turn.of(Role.USER, "Hello"), Turn.of(Role.ASSISTANT, MARKER))));
    } catch (RowRejection e) {
      return Set.of(); // chat requests will be refused with the template's reason
    }
    Set<Integer> ids = new HashSet<>();
    for (int i = 0; i < pieces.size(); i++) {
      if (pieces.get(i) instanceof Piece.Text t && t.trainable() && t.text().contains(MARKER)) {
        String after = t.text().substring(t.text().indexOf(MARKER) + MARKER.length());
        for (int id : tokenizer.encode(after, false)) {
          if (!tokenizer.decode(new int[] {id}, false).isBlank()) {
            if (tokenizer.decode(new int[] {id}, true).isEmpty()) {
              ids.add(id);
            }
            break;
          }
        }
      }
    }
    return Set.copyOf(ids);
  }

  /**
   * The prompt ids for the next assistant turn after {@code messages}.
   *
   * @throws ApiError 400 naming the messages when their order is not system?, (user, assistant)*,
   *     user, or the template cannot render them
   */
  int[] ids(List<ApiRequest.Message> messages) {
    List<Turn> turns = new ArrayList<>();
    for (ApiRequest.Message m : messages) {
      turns.add(Turn.of(Role.valueOf(m.role().toUpperCase(Locale.ROOT)), m.content()));
    }
    turns.add(Turn.of(Role.ASSISTANT, PLACEHOLDER));
    List<Piece> pieces;
    try {
      pieces = template.render(new Conversation(turns));
    } catch (RowRejection e) {
      throw ApiError.invalid(
          "messages",
          e.getMessage()
              + " (messages must be an optional system message, then user and assistant"
              + " alternating, ending with user)");
    }
    int last = lastReply(pieces);
    int[] ids = new int[0];
    StringBuilder run = new StringBuilder();
    for (int i = 0; i < last; i++) {
      if (pieces.get(i) instanceof Piece.Text t) {
        run.append(t.text());
      } else {
        ids = append(ids, tokenizer.encode(run.toString(), ids.length == 0));
        run.setLength(0);
        ids = append(ids, new int[] {tokenizer.eosId()});
      }
    }
    if (run.length() > 0 || ids.length == 0) {
      ids = append(ids, tokenizer.encode(run.toString(), ids.length == 0));
    }
    return ids;
  }

  /** The index of the placeholder reply: the last scored text piece. */
  private static int lastReply(List<Piece> pieces) {
    for (int i = pieces.size() - 1; i >= 0; i--) {
      if (pieces.get(i) instanceof Piece.Text t && t.trainable()) {
        return i;
      }
    }
    throw ApiError.invalid("messages", "the chat template rendered no assistant turn");
  }

  private static int[] append(int[] a, int[] b) {
    int[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
