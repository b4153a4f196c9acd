//! The loader: what the host hands the kernel, and how the kernel lays out a program to run.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![deny(unsafe_code)]
extern crate alloc;

pub mod console_input;
pub mod elf;
pub mod hostlink;
pub mod image;
pub mod stack;

pub use console_input::{
    encode_input, encode_input_end, InputDecoder, InputEvent, InputRecordKind,
};
pub use elf::{plan, ElfError, ElfKind, LoadPlan, Segment, SegmentFlags, TlsTemplate};
pub use hostlink::{
    encode_exit, encode_log, encode_records, encode_stderr, encode_trace, record_header, Decoder,
    HostLinkError, LogLevel, Record, RecordKind,
};
pub use image::{Image, ImageBuilder, ImageError, SectionTag};
pub use stack::{build_initial_stack, AuxValues, InitialStack, StackError, StackSpec, StackString};
