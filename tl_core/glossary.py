"""Plain words for the terms a newcomer meets: one line each, shown as help where the term appears
(and together on the glossary expander). English here, Korean in ``locales/ko.json``."""

from __future__ import annotations

from .i18n import N_, _

TERMS: dict[str, tuple[str, str]] = {
    "epochs": (N_("Epochs"), N_("One epoch = the model sees every training photo once. More epochs: more "
                                "practice, more time; the best epoch is kept anyway.")),
    "learning_rate": (N_("Learning rate"), N_("How big a step the model takes when it corrects itself. Too big: "
                                              "it forgets what it knew; too small: it learns slowly.")),
    "hidden_units": (N_("Hidden units"), N_("Size of the small new layer between the pretrained network and the "
                                            "answer. More units can learn more, and can also memorise more.")),
    "layer_groups": (N_("Layer groups"), N_("The pretrained network is a stack of blocks, from simple patterns "
                                            "(edges) at the input to whole object parts at the top. We freeze "
                                            "or train them block by block.")),
    "frozen": (N_("Frozen"), N_("A frozen layer keeps what it learned on ImageNet and is not changed by training.")),
    "fine_tune": (N_("Fine-tuning"), N_("Training some pretrained layers a little further on your photos, with "
                                        "small steps, instead of keeping them frozen.")),
    "feature_extractor": (N_("Frozen feature extractor"), N_("The whole pretrained network stays frozen and only "
                                                             "describes each photo; a new small classifier learns "
                                                             "your classes from those descriptions.")),
    "augmentation": (N_("Augmentation"), N_("Random small changes to the training photos (crops, flips, colours) so "
                                            "the model learns the object, not the exact picture. Slower: photos "
                                            "must be processed again every epoch.")),
    "gflops": (N_("GFLOPs"), N_("Billions of calculations to look at one photo: a measure of how slow the network "
                                "is.")),
    "input_px": (N_("Input size"), N_("Every photo is resized to this many pixels per side before the network sees "
                                      "it.")),
    "params": (N_("Parameters"), N_("The numbers the network learned. More parameters: a bigger network, slower "
                                    "and able to learn more.")),
    "knn": (N_("Nearest-neighbour test"), N_("For each sample photo we look at the 5 most similar other photos "
                                             "(by the network's description): if most have the same class, the "
                                             "pretrained network already tells your classes apart.")),
    "imagenet_confidence": (N_("ImageNet confidence"), N_("How sure the original network is about its own "
                                                          "1000 everyday labels on your photos: high for everyday "
                                                          "objects, low for X-rays or hand signs.")),
    "precision": (N_("Precision"), N_("Of the photos the model called this class, the share that really are.")),
    "recall": (N_("Recall"), N_("Of the photos that really are this class, the share the model found.")),
    "f1": (N_("F1"), N_("One score from precision and recall together (1 = perfect, 0 = none right).")),
    "support": (N_("Test photos"), N_("How many test photos of this class there are.")),
    "validation": (N_("Validation accuracy"), N_("Accuracy on photos set aside to pick the best epoch; they are "
                                                 "not used for learning.")),
    "test": (N_("Test accuracy"), N_("Accuracy on photos the model never saw during training: the honest score.")),
    "parity": (N_("Parity check"), N_("The exported file is run on sample photos and must give the same answers as "
                                      "this app; the number is the largest difference in a probability.")),
    "rgb_uint8": (N_("RGB pictures"), N_("Ordinary colour pictures (red, green, blue values from 0 to 255); the "
                                         "file resizes and normalises them itself.")),
    "grad_cam": (N_("Grad-CAM"), N_("A heat map of the parts of the photo that pushed the model to its answer.")),
}


def term(key: str) -> str:
    return _(TERMS[key][0])


def explain(key: str) -> str:
    """The one-line explanation of ``key`` in the current language."""
    return _(TERMS[key][1])


def glossary_markdown(keys: list[str] | None = None) -> str:
    """A bullet list "**term**: explanation" of ``keys`` (all terms when None)."""
    return "\n".join(f"- **{term(k)}**: {explain(k)}" for k in (keys or list(TERMS)))
