/**
 * PaddleDetection's `finetune_exclude_pretrained_params` table: the prediction heads to leave
 * out when fine-tuning a detector pretrained on another dataset (patterns match at the start).
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
