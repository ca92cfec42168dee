import { usageError } from '../core/errors.js';
/**
 * PaddleDetection's `finetune_exclude_pretrained_params` table: the prediction heads to leave
 * out when fine-tuning a detector pretrained on another dataset. Each pattern matches at the start
 * of any dotted part of the name (`part:`), since PaddleDetection 2.x nests its heads.
 */
export const PRESETS: Readonly<Record<string, readonly string[]>> = {
  'faster-rcnn': ['cls_score', 'bbox_pred'],
  'cascade-rcnn': ['cls_score', 'bbox_pred'],
  'mask-rcnn': ['cls_score', 'bbox_pred', 'mask_fcn_logits'],
  'cascade-mask-rcnn': ['cls_score', 'bbox_pred', 'mask_fcn_logits'],
  retinanet: ['retnet_cls_pred_fpn'],
  ssd: ['^conv2d_'],
  yolov3: ['yolo_output'],
};

export function presetPatterns(name: string | undefined): string[] {
  if (name === undefined) return [];
  const patterns = PRESETS[name];
  if (!patterns) throw usageError(`unknown preset '${name}'; presets: ${Object.keys(PRESETS).join(', ')}`);
  // Frameworks nest heads (PaddleDetection 2.x: yolo_head.yolo_output.0.weight): match any part.
  return patterns.map((p) => `part:${p}`);
}
