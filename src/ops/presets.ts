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
