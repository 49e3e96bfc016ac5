# mproxy_add_bundle(NAME PROGRAM_TARGET OUTDIR): a target NAME (built by ALL)
# that packs PROGRAM_TARGET with its shared libraries and loader into OUTDIR
# via scripts/bundle-agent.sh. Included by packaging/agent and by the tests.
include_guard(GLOBAL)

# The static launcher every bundle starts through (see README.md). It must stay
# free of sanitizer and fuzzer flags: those need a dynamic runtime.
if(NOT TARGET mproxy-bundle-launcher)
  add_executable(mproxy-bundle-launcher ${CMAKE_CURRENT_LIST_DIR}/launcher.c)
  set_target_properties(mproxy-bundle-launcher PROPERTIES
    C_STANDARD 11 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF
    COMPILE_OPTIONS "-Os;-Wall;-Wextra"
    LINK_OPTIONS "-static;-s")
endif()

function(mproxy_add_bundle name program outdir)
  add_custom_command(
    OUTPUT ${outdir}/bundle.tar.gz ${outdir}/bundle.sha256
    COMMAND ${PROJECT_SOURCE_DIR}/scripts/bundle-agent.sh
            --launcher $<TARGET_FILE:mproxy-bundle-launcher>
            $<TARGET_FILE:${program}> ${outdir}
    DEPENDS ${program} mproxy-bundle-launcher
            ${PROJECT_SOURCE_DIR}/scripts/bundle-agent.sh
            ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/install.sh
    COMMENT "Bundling ${program} with its libraries and loader into ${outdir}"
    VERBATIM)
  add_custom_target(${name} ALL
    DEPENDS ${outdir}/bundle.tar.gz ${outdir}/bundle.sha256)
endfunction()
