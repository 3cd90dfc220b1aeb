"""The top-down pipeline: one person at a time, cut from the image by its box.

It sits beside ``bottomup/`` (predictions stage: it reads configs, models and the bottom-up
package's shared parts, never a later stage):

* ``boxes``: person boxes, from a COCO-format annotation file (ground truth, for training or an
  oracle test) or a COCO-format detection file (``[{image_id, bbox, score}]``);
* ``crops``: box -> centre and size at the crop's aspect, the affine crop and its inverse;
* ``targets``: single-person heatmaps and per-joint weights at the network's output stride;
* ``decode``: argmax, DarkPose's sub-cell step (``bottomup.refinement.adjust_dark``), the flip
  test, the map back to the image and HRNet's score (box score x mean confident joint heat);
* ``nms``: OKS non-maximum suppression of one image's persons.
"""
