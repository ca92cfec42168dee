/**
 * llama.cpp's tensor names (`blk.0.attn_q.weight`) as Hugging Face's llama-family models name the
 * same tensors (`model.layers.0.self_attn.q_proj.weight`), so that a GGUF pairs with the
 * safetensors it was converted from. Names outside the map are returned unchanged.
 */
const TOP_LEVEL: Readonly<Record<string, string>> = {
  token_embd: 'model.embed_tokens',
  output_norm: 'model.norm',
  output: 'lm_head',
};

const PER_BLOCK: Readonly<Record<string, string>> = {
  attn_q: 'self_attn.q_proj',
  attn_k: 'self_attn.k_proj',
  attn_v: 'self_attn.v_proj',
  attn_output: 'self_attn.o_proj',
  attn_norm: 'input_layernorm',
  ffn_norm: 'post_attention_layernorm',
  ffn_gate: 'mlp.gate_proj',
  ffn_up: 'mlp.up_proj',
  ffn_down: 'mlp.down_proj',
  attn_q_norm: 'self_attn.q_norm',
  attn_k_norm: 'self_attn.k_norm',
};

export function huggingFaceName(name: string): string {
  const block = /^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$/.exec(name);
  if (block) {
    const part = PER_BLOCK[block[2]!];
    return part ? `model.layers.${block[1]}.${part}.${block[3]}` : name;
  }
  const top = /^([a-z_]+)\.(weight|bias)$/.exec(name);
  const mapped = top && TOP_LEVEL[top[1]!];
  return mapped ? `${mapped}.${top[2]}` : name;
}
