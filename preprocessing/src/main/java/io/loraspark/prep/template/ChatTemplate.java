package io.loraspark.prep.template;

import io.loraspark.prep.schema.Conversation;
import io.loraspark.prep.schema.RejectReason;
import io.loraspark.prep.schema.Role;
import io.loraspark.prep.schema.RowRejection;
import io.loraspark.prep.schema.Turn;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A model's {@code chat_template} (Jinja, from {@code tokenizer_config.json}), rendered in a {@link
 * SandboxedJinja} with {@code messages}, {@code add_generation_prompt}, {@code bos_token} and
 * {@code eos_token}, as transformers' {@code apply_chat_template} does.
 *
 * <p>Which characters are the assistant's is found by rendering prefixes: for assistant turn i,
 * {@code render(messages[:i], add_generation_prompt=True)} ends where the reply starts and {@code
 * render(messages[:i+1])} ends after it. The scored span is everything between, minus trailing
 * whitespace: the reply and the template's end-of-turn marker (e.g. {@code <|im_end|>}), as
 * transformers' {@code {% generation %}} blocks mark it. Each prefix must be a prefix of the full
 * rendering and the span must contain the reply's text, otherwise the row is rejected ({@code
 * template_error}): the mask would not be exact.
 */
public final class ChatTemplate implements PromptTemplate {

  /** Name recorded in the manifest. */
  public static final String NAME = "chat";

  private final String source;
  private final String bosToken;
  private final String eosToken;
  private final SandboxedJinja jinja = new SandboxedJinja();

  /**
   * @param source the Jinja source
   * @param bosToken the BOS token text ("" if none)
   * @param eosToken the EOS token text ("" if none)
   */
  public ChatTemplate(String source, String bosToken, String eosToken) {
    this.source = Objects.requireNonNull(source, "source");
    this.bosToken = Objects.requireNonNull(bosToken, "bosToken");
    this.eosToken = Objects.requireNonNull(eosToken, "eosToken");
  }

  /**
   * Renders a plain user/assistant exchange once, so that a template that cannot work (loads files,
   * never ends, raises on every input, has a syntax error) fails before any data is read.
   *
   * @param where names the template's origin in the message
   * @throws IllegalArgumentException with the reason
   */
  public void validate(String where) {
    Conversation probe = Conversation.single("Hello!", "", "Hi, how can I help?");
    try {
      render(probe);
    } catch (RowRejection e) {
      throw new IllegalArgumentException(
          "the chat_template of "
              + where
              + " cannot render a plain user/assistant exchange: "
              + e.getMessage()
              + "; fix the template or use --template alpaca",
          e);
    }
  }

  @Override
  public List<Piece> render(Conversation conversation) {
    List<Map<String, Object>> messages = messages(conversation);
    String full = render(messages, false);
    List<Piece> pieces = new ArrayList<>();
    int cursor = 0;
    for (int i = 0; i < messages.size(); i++) {
      if (conversation.turns().get(i).role() != Role.ASSISTANT) {
        continue;
      }
      String before = render(messages.subList(0, i), true);
      String through = i == messages.size() - 1 ? full : render(messages.subList(0, i + 1), false);
      if (!through.startsWith(before) || !full.startsWith(through) || before.length() < cursor) {
        throw rejection(
            "the template is not incremental: rendering the first "
                + (i + 1)
                + " messages is not a prefix of rendering them all, so the reply cannot be located");
      }
      int end = through.stripTrailing().length();
      String reply = conversation.turns().get(i).content().strip();
      if (end <= before.length() || !full.substring(before.length(), end).contains(reply)) {
        throw rejection("the template does not render assistant message " + (i + 1) + " verbatim");
      }
      pieces.add(new Piece.Text(full.substring(cursor, before.length()), false));
      pieces.add(new Piece.Text(full.substring(before.length(), end), true));
      cursor = end;
    }
    if (cursor < full.length()) {
      pieces.add(new Piece.Text(full.substring(cursor), false));
    }
    return pieces;
  }

  @Override
  public String name() {
    return NAME;
  }

  private String render(List<Map<String, Object>> messages, boolean addGenerationPrompt) {
    Map<String, Object> context = new HashMap<>();
    context.put("messages", messages);
    context.put("add_generation_prompt", addGenerationPrompt);
    context.put("bos_token", bosToken);
    context.put("eos_token", eosToken);
    try {
      return jinja.render(source, context);
    } catch (SandboxedJinja.RenderFailure e) {
      throw rejection(e.getMessage());
    }
  }

  private static List<Map<String, Object>> messages(Conversation conversation) {
    List<Map<String, Object>> out = new ArrayList<>();
    for (Turn t : conversation.turns()) {
      Map<String, Object> m = new HashMap<>();
      m.put("role", t.role().jinjaName());
      m.put("content", t.contentWithContext());
      out.add(m);
    }
    return out;
  }

  private static RowRejection rejection(String message) {
    return new RowRejection(RejectReason.TEMPLATE_ERROR, "chat_template: " + message);
  }
}
